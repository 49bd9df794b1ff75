"""Where a command's store is: a local folder or an fsspec URL (s3://..., storage.remote), the root the
storage layer names it by, and the views file this machine reads for it. Light: the CLI's start-up path."""

from __future__ import annotations

import os

__all__ = ["is_remote", "missing_store", "store_root", "views_db_path"]


def is_remote(store: str) -> bool:
    """An fsspec URL store (s3://..., storage.remote), not a local folder."""
    return "://" in store and not store.startswith("file://")


def store_root(store: str) -> str:
    """The store's root as the storage layer names it: the URL, or the folder's absolute path."""
    return store.rstrip("/") if is_remote(store) else os.path.abspath(store)


def views_db_path(root: str) -> str:
    """The views file this machine reads for the store at `root` (a remote store's is in the local cache)."""
    from storage.remote import local_views_path

    return local_views_path(root) if is_remote(root) else os.path.join(root, "views.duckdb")


def missing_store(store: str) -> str | None:
    """Why a read command cannot use `store` before opening anything (a local folder that is not there),
    or None; a URL store is checked when it is opened."""
    if is_remote(store) or os.path.isdir(store):
        return None
    return f"store {store} is a file, not a folder" if os.path.exists(store) else f"no store at {store} (folder not found)"
