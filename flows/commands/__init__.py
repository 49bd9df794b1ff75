"""The `pixelrefer` sub-commands, one module each (`register(subparsers)` + `run(args) -> int`).

Every module here is imported when the CLI builds its parser, so their top-level imports stay light
(stdlib and the small argument helpers); what a command needs beyond that (the storage layer, Prefect, the
pipeline, torch) is imported inside its `run`, so `pixelrefer --help`, `query` and `status` start in a
fraction of a second.
"""
