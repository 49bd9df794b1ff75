"""Store roots on object storage (any fsspec URL: ``s3://bucket/prefix``, ``gs://...``, ``memory://...``).

What a remote root changes, and the guarantees it relies on:

- **The filesystem** (`root_filesystem`): fsspec's, made from the URL with directory-listing caches off.
  Several workers write one store: a listing cached by one process would hide the files the others wrote
  since (a unit written elsewhere would look missing, and be redone). Credentials and endpoints come from
  the environment of the process (for S3: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_ENDPOINT_URL``, ... read by botocore), never from the URL.
- **Atomic writes** (`put_atomic`): on an object store a PUT is atomic for the whole object. S3 (and GCS,
  Azure Blob) never show a partly written object: a reader gets the previous object or the new one,
  also when a PUT replaces an existing key, and since December 2020 S3 is strongly consistent (a read or
  a listing after a successful PUT sees it). A multipart upload becomes visible only when it completes,
  whole. So a unit file is serialised in memory and sent as one object to its final key: no temporary
  key, no copy (S3 has no rename: ``mv`` is copy + delete, two requests and a window where both exist).
  Filesystems that are not object stores (sftp, ...) get a temporary name and a move instead.
- **Create-if-absent** (`put_if_absent`): a conditional PUT (``If-None-Match: *``, S3 since 2024, also
  GCS and Azure) lets exactly one of several writers create a key; used for the store's identity, so
  workers that open a brand-new store at once agree on it. Where the filesystem offers no conditional
  create, the last writer wins (documented race, only for a brand-new store).
- **DuckDB** reads the Parquet through the same fsspec filesystem registered on its connection
  (`register_filesystem`): no DuckDB extension (httpfs) has to be downloaded, and the lockdown's
  ``allowed_directories`` still limit reads to the store's own folders.

Nothing here imports fsspec, s3fs or duckdb at module level.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    from fsspec import AbstractFileSystem

__all__ = ["OBJECT_STORE_PROTOCOLS", "duckdb_offline", "has_atomic_put", "is_url", "local_views_path", "protocols",
           "put_atomic", "put_if_absent", "register_filesystem", "root_filesystem"]

log = logging.getLogger(__name__)

# Protocols whose PUT replaces a whole object atomically (see module docstring).
OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})


def is_url(root: str) -> bool:
    """True for an fsspec URL (``proto://...``) other than ``file://``."""
    return "://" in root and not root.startswith("file://")


def local_cache_dir(root: str, kind: str) -> str:
    """This machine's own folder for `kind` of the remote store `root` (views, copied videos, the tiny
    model): ``$XDG_CACHE_HOME/pixelrefer/<kind>/<digest of the URL>`` (``~/.cache`` by default). Things that
    must sit on a local disk (DuckDB's database file, decoders' input) live there, one folder per URL."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(root.rstrip("/").encode()).hexdigest()[:16]
    return os.path.join(cache, "pixelrefer", kind, digest)


def local_views_path(root: str) -> str:
    """Where this machine keeps the views file of the remote store `root` when none is given:
    ``$XDG_CACHE_HOME/pixelrefer/views/<digest of the URL>/views.duckdb`` (``~/.cache`` by default). DuckDB
    writes its database file in place, so it lives on a local disk; every machine builds its own from the
    store (the views file records the store's URL, storage.refresh), and the same URL always maps to the
    same file, so each command of a machine finds the views the previous one refreshed."""
    return os.path.join(local_cache_dir(root, "views"), "views.duckdb")


def protocols(fs: AbstractFileSystem) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def has_atomic_put(fs: AbstractFileSystem) -> bool:
    """Does one PUT of `fs` replace a whole object atomically (an object store)?"""
    return bool(OBJECT_STORE_PROTOCOLS.intersection(protocols(fs)))


def root_filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """(filesystem, path inside it) of an fsspec URL, with listing caches off (see module docstring)."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, use_listings_cache=False)
    except TypeError:  # an implementation that takes no cache options: it has no listing cache either
        return fsspec.core.url_to_fs(url)


def put_atomic(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old content or all of the new, never a part."""
    if has_atomic_put(fs):
        fs.pipe_file(path, data)
        return
    folder = path.rstrip("/").rsplit("/", 1)[0]
    tmp = f"{folder}/.tmp-{uuid.uuid4().hex}.partial"
    fs.pipe_file(tmp, data)
    try:
        fs.mv(tmp, path)
    except BaseException:
        try:
            fs.rm(tmp)
        except OSError:  # pragma: no cover - best effort; stale temporaries are cleaned on store open
            log.warning("could not remove temporary %s", tmp)
        raise


def put_if_absent(fs: AbstractFileSystem, path: str, data: bytes) -> bool:
    """Create `path` with `data` unless it exists; True when this call created it.

    Object stores: one conditional PUT, so of several concurrent callers exactly one wins. Elsewhere an
    existence check then a write (the last of two racing writers wins)."""
    if has_atomic_put(fs):
        try:
            fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        except TypeError:  # pragma: no cover - an implementation without mode="create"
            pass
        else:
            return True
    if fs.exists(path):
        return False
    put_atomic(fs, path, data)
    return True


def register_filesystem(con: duckdb.DuckDBPyConnection, fs: AbstractFileSystem) -> None:
    """Let DuckDB read `fs`'s URLs through fsspec (once per database instance: DuckDB shares one
    instance per file within a process, and refuses a second registration of a protocol)."""
    name = protocols(fs)[0]
    if not con.filesystem_is_registered(name):
        con.register_filesystem(fs)


def duckdb_offline(con: Any) -> None:
    """Never let DuckDB download an extension (it would try httpfs for an s3:// path it cannot read)."""
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
