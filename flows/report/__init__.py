"""The static report of a store (`pixelrefer report`), the overlay clips (`pixelrefer render`) and the
thumbnails of existing stores (`pixelrefer thumbnails`): reading the store, never writing it (except the
thumbnails stage's own table). Modules import lazily: `import flows.report` costs nothing."""
