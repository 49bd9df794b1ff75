"""The store of record: Parquet tables under one root, a catalog, and a DuckDB views file.

Layout::

    <root>/catalog.sqlite                                   catalog (default; any SQLAlchemy URL otherwise)
    <root>/views.duckdb                                     views + small tables (see storage.refresh)
    <root>/<table>/video_id=<video_id>/<unit_key>.parquet   one file per unit of work
    <root>/_store/                                          store identity marker, zero-row schema files
    <root>/quarantine/<table>/video_id=<id>/<unit_key>.<utc stamp>.parquet   files set aside (+ .reason.json)

A unit is written to ``.tmp-<uuid>.parquet.partial`` in its final folder and renamed into place
(storage.atomic), so re-writing a unit replaces it, and a crash leaves only a temporary that no reader
globs (``*.parquet``). Temporaries older than `stale_temp_s` are removed when the store is opened.

A store opened ``read_only`` creates, cleans and writes nothing (its catalog is opened read-only too);
every method that would write raises ReadOnlyStoreError saying what needs write access.

Local roots are plain paths. A root may also be an fsspec URL (``s3://bucket/prefix``; storage.remote):
the Parquet files and ``_store/`` live there, the catalog must be a database every writer reaches
(``catalog_url``, e.g. PostgreSQL) and the views file is a local file of each machine (``db_path``,
default `storage.remote.local_views_path`: one folder per store URL in the user's cache folder).
Unit files are then written as one PUT each (atomic on object stores), and DuckDB reads them through the
same fsspec filesystem registered on its connections.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from storage.atomic import TEMP_PREFIX, atomic_path
from storage.catalog import Catalog
from storage.errors import ReadOnlyStoreError, StoreError
from storage.layout import COMPRESSION, TABLE_NAMES
from storage.lockdown import META_DIR
from storage.remote import (
    has_atomic_put,
    is_url,
    local_views_path,
    put_atomic,
    put_if_absent,
    root_filesystem,
)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from fsspec import AbstractFileSystem

    from storage.health import VerifyReport
    from storage.refresh import RefreshReport
    from storage.unitfiles import UnitFileState

__all__ = ["Store", "TEMP_PREFIX", "TEMP_SUFFIX"]

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".parquet.partial"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ID_FILE = "store_id"


def _check_name(kind: str, value: str) -> None:
    if not isinstance(value, str) or not _SAFE.match(value) or len(value) > 200:
        raise StoreError(
            f"{kind} {value!r} is not usable in a file name: use letters, digits, '.', '_' or '-' "
            "(not starting with '.'), at most 200 characters"
        )


@dataclass
class Store:
    """An open store. Build with `Store.open`; `root` is absolute (local) or a URL."""

    root: str
    db_path: str
    catalog: Catalog
    read_only: bool = False
    _fs: Any = field(default=None, repr=False)
    _store_id: str | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        catalog_url: str | None = None,
        create: bool = True,
        db_path: str | None = None,
        stale_temp_s: float = 3600.0,
        read_only: bool = False,
    ) -> Store:
        """Open (or with `create`, make) the store at `root` and its catalog; see the module docstring."""
        text = os.fspath(root)
        fs = None
        if is_url(text):
            fs, path = root_filesystem(text)
            root_str = text.rstrip("/")
            exists = fs.exists(f"{path}/{META_DIR}/{_ID_FILE}") or fs.exists(path)
        else:
            path = root_str = os.path.abspath(text.removeprefix("file://"))
            if os.path.exists(path) and not os.path.isdir(path):
                raise StoreError(f"store path {text} is a file, not a folder")
            exists = os.path.isdir(path)
        if not exists:
            if read_only or not create:
                raise StoreError(f"no store at {text}: the folder does not exist")
            if fs is not None:
                fs.makedirs(path, exist_ok=True)
            else:
                os.makedirs(path, exist_ok=True)
        if fs is None and not read_only:
            catalog_file = os.path.join(path, "catalog.sqlite")
            if not os.access(path, os.W_OK) or (os.path.exists(catalog_file) and not os.access(catalog_file, os.W_OK)):
                raise ReadOnlyStoreError(path, "opening the store for writing (open it with read_only=True to read it)")
        if catalog_url is None:
            if fs is not None:
                raise StoreError(f"store {text} is not a local folder: give its catalog's URL (--catalog-url or "
                                 "PIXELREFER_CATALOG_URL, e.g. postgresql+psycopg://user@host/pixelrefer), "
                                 "a database every worker reaches")
            catalog_url = f"sqlite:///{os.path.join(path, 'catalog.sqlite')}"
        if db_path is None:
            db_path = local_views_path(root_str) if fs is not None else os.path.join(path, "views.duckdb")
        elif is_url(db_path):
            raise StoreError(f"views file {db_path}: must be a local path (DuckDB writes it in place)")
        store = cls(root=root_str, db_path=os.path.abspath(db_path), catalog=Catalog(catalog_url, read_only=read_only),
                    read_only=read_only, _fs=fs)
        if not read_only:
            store.store_id()
            store.clean_stale_temps(stale_temp_s)
        return store

    # -- paths ------------------------------------------------------------------------------------
    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec filesystem of the root (a LocalFileSystem for local roots, made on first use)."""
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            self._fs = LocalFileSystem()
        return self._fs

    @property
    def is_local(self) -> bool:
        return not is_url(self.root)

    def table_dir(self, table_name: str) -> str:
        if table_name not in TABLE_NAMES:
            raise StoreError(f"unknown table {table_name!r}; known tables: {', '.join(TABLE_NAMES)}")
        return f"{self.root}/{table_name}"

    def unit_path(self, table_name: str, video_id: str, unit_key: str) -> str:
        _check_name("video_id", video_id)
        _check_name("unit_key", unit_key)
        return f"{self.table_dir(table_name)}/video_id={video_id}/{unit_key}.parquet"

    def require_writable(self, what: str) -> None:
        """Raise ReadOnlyStoreError naming `what` when the store is opened read-only."""
        if self.read_only:
            raise ReadOnlyStoreError(self.root, what)

    def store_id(self) -> str | None:
        """This store's identity (a uuid made when the store was first opened for writing; copies share it).

        The views file names it in `_pixelrefer.store_check()`, which refuses to read another store's
        files. None for a read-only store that never had one (made by an older version)."""
        if self._store_id:
            return self._store_id
        meta = f"{self.root}/{META_DIR}"
        id_file = f"{meta}/{_ID_FILE}"
        value: str | None = None
        if self.fs.exists(id_file):
            with self.fs.open(id_file, "r") as fh:
                value = fh.read().strip() or None
        if value is None and not self.read_only:
            value = self._create_store_id(meta, id_file)
        if value is not None:
            marker = f"{meta}/store-{value}.id"
            if not self.read_only and not self.fs.exists(marker):
                if self.is_local:
                    with open(marker, "w") as fh:
                        fh.write(value + "\n")
                else:
                    put_atomic(self.fs, marker, (value + "\n").encode())
            self._store_id = value
        return value

    def _create_store_id(self, meta: str, id_file: str) -> str:
        self.fs.makedirs(meta, exist_ok=True)
        candidate = uuid.uuid4().hex
        if self.is_local:
            # first writer wins: the id is written to a temporary file, then hard-linked to its name (which
            # fails if the name exists), so nobody ever reads the name before it has its content
            tmp = os.path.join(meta, f"{TEMP_PREFIX}{candidate}.id")
            with open(tmp, "w") as fh:
                fh.write(candidate + "\n")
            try:
                os.link(tmp, id_file)
            except FileExistsError:
                pass
            except OSError:  # no hard links on this filesystem: exclusive create, then the content
                with contextlib.suppress(FileExistsError), open(id_file, "x") as fh:
                    fh.write(candidate + "\n")
            finally:
                os.remove(tmp)
            with open(id_file) as fh:
                return fh.read().strip() or candidate
        # object stores: a conditional PUT (If-None-Match), so concurrent openers agree on one identity
        put_if_absent(self.fs, id_file, (candidate + "\n").encode())
        return self.fs.cat_file(id_file).decode().strip() or candidate

    # -- units --------------------------------------------------------------------------------------
    def write_unit(self, table_name: str, video_id: str, unit_key: str, table: pa.Table) -> str:
        """Atomically write (or replace) one unit; returns its path.

        `table` is conformed to the table's schema (see `storage.schemas.conform_table`) and stamped with
        its schema version; its video_id column must be `video_id` in every row. A table of zero rows is
        a valid unit (e.g. a video with no objects).
        """
        import pyarrow.parquet as pq

        from storage.schemas import conform_table, stamped

        self.require_writable(f"writing {table_name} unit {unit_key!r}")
        final = self.unit_path(table_name, video_id, unit_key)
        table = stamped(table_name, conform_table(table_name, table))
        ids = set(table.column("video_id").unique().to_pylist())
        if ids - {video_id}:
            raise StoreError(
                f"{table_name} unit {unit_key!r}: rows carry video_id(s) {sorted(ids - {video_id})}, "
                f"not {video_id!r}"
            )
        compression = COMPRESSION.get(table_name, "snappy")
        if self.is_local:
            with atomic_path(final, suffix=TEMP_SUFFIX) as tmp:
                pq.write_table(table, tmp, compression=compression)
        else:  # the whole file in memory, then one PUT (storage.remote: atomic on object stores)
            import pyarrow as pa

            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression=compression)
            put_atomic(self.fs, final, sink.getvalue().to_pybytes())
        log.debug("wrote %s (%d rows)", final, table.num_rows)
        return final

    def has_unit(self, table_name: str, video_id: str, unit_key: str) -> bool:
        path = self.unit_path(table_name, video_id, unit_key)
        return os.path.isfile(path) if self.is_local else bool(self.fs.exists(path))

    def delete_unit(self, table_name: str, video_id: str, unit_key: str) -> bool:
        """Remove one unit's file; True when there was one."""
        self.require_writable(f"deleting {table_name} unit {unit_key!r}")
        path = self.unit_path(table_name, video_id, unit_key)
        if not self.fs.exists(path):
            return False
        self.fs.rm(path)
        return True

    def list_units(self, table_name: str, video_id: str | None = None) -> list[tuple[str, str]]:
        """Sorted (video_id, unit_key) of the complete units of a table (temporaries excluded)."""
        from storage.unitfiles import list_unit_files

        self.table_dir(table_name)
        files = list_unit_files(self, [table_name])[table_name]
        return [(f.video_id, f.unit_key) for f in files if video_id is None or f.video_id == video_id]

    def tables_with_files(self) -> list[str]:
        from storage.unitfiles import list_unit_files

        return [t for t, files in list_unit_files(self).items() if files]

    def clean_stale_temps(self, older_than_s: float = 3600.0) -> int:
        """Remove writers' temporaries older than `older_than_s` (left by crashes); returns how many."""
        self.require_writable("removing stale temporary files")
        removed = 0
        now = time.time()
        for path, local in self._temporaries():
            try:
                age = now - (os.path.getmtime(path) if local else self.fs.modified(path).timestamp())
                if age >= older_than_s:
                    if local:
                        os.remove(path)
                    else:
                        self.fs.rm(path)
                    removed += 1
            except (OSError, NotImplementedError):  # pragma: no cover - vanished or no mtime
                continue
        if removed:
            log.info("removed %d stale temporary file(s) under %s", removed, self.root)
        return removed

    def _temporaries(self) -> list[tuple[str, bool]]:
        """(path, is local) of writers' temporaries in the unit folders and next to the views file (local:
        names only, no stat). An object store holds none (units are written in one PUT): not listed."""
        views = [(p, True) for p in self._views_temporaries()]
        if not self.is_local:
            if has_atomic_put(self.fs):
                return views
            patterns = [f"{self.table_dir(t)}/video_id=*/{TEMP_PREFIX}*" for t in TABLE_NAMES]
            return [(p, False) for pattern in patterns for p in self.fs.glob(pattern)] + views
        out = []
        for table in TABLE_NAMES:
            try:
                folders = [f.path for f in os.scandir(self.table_dir(table)) if f.name.startswith("video_id=")]
            except FileNotFoundError:
                continue
            for folder in folders:
                try:
                    out += [(e.path, True) for e in os.scandir(folder)
                            if e.name.startswith(TEMP_PREFIX) and e.name.endswith(TEMP_SUFFIX)]
                except FileNotFoundError:
                    continue
        return out + views

    def _views_temporaries(self) -> list[str]:
        folder = os.path.dirname(self.db_path)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:  # a remote store's local views folder, before the first refresh
            return []
        return [os.path.join(folder, n) for n in names if n.startswith(".views-") and ".duckdb.partial" in n]

    # -- health (storage.health) --------------------------------------------------------------------
    def check_unit(self, table_name: str, video_id: str, unit_key: str,
                   expected_rows: int | None = None) -> UnitFileState:
        """The state of one unit file from its footer: 'ok' | 'missing' | 'unreadable' | 'foreign_schema' |
        'row_count_mismatch' (with a reason). The expected row count is `expected_rows`, else what the
        catalog recorded at mark_done (not compared when neither is known)."""
        from storage.health import check_unit

        return check_unit(self, table_name, video_id, unit_key, expected_rows)

    def quarantine(self, table_name: str, video_id: str, unit_key: str, reason: str,
                   requeue: bool = True) -> str | None:
        """Move a unit file into ``<root>/quarantine/`` (with a reason file), record it in the catalog and,
        with `requeue`, put its catalog unit back to pending; returns the new path relative to the root
        (None when there was no file; the unit is still re-queued)."""
        from storage.health import quarantine

        return quarantine(self, table_name, video_id, unit_key, reason, requeue)

    def verify(self, repair: bool = False) -> VerifyReport:
        """Check every done unit against its files and every file against the catalog; with `repair`,
        quarantine bad files and re-queue their units (see storage.health.verify)."""
        from storage.health import verify

        return verify(self, repair)

    # -- reading and views --------------------------------------------------------------------------
    def refresh_views(self) -> RefreshReport:
        """Rebuild the views file atomically and incrementally; see storage.refresh.refresh_views."""
        from storage.refresh import refresh_views

        return refresh_views(self)

    def connect(self, refresh: bool | None = None, limits: Any = None) -> duckdb.DuckDBPyConnection:
        """A locked-down, read-only DuckDB connection on the views file (storage.lockdown).

        `refresh` (default: when the store is writable) brings the views file up to date first, a cheap
        no-op when no unit changed; a read-only store is read as its last refresh left it.
        """
        from storage.lockdown import DEFAULT_LIMITS
        from storage.query import open_views

        if refresh is None:
            refresh = not self.read_only
        if refresh:
            self.refresh_views()
        elif not os.path.isfile(self.db_path):
            raise StoreError(f"no views database at {self.db_path}: the store's views were never refreshed"
                             + (" (that needs write access)" if self.read_only else ""))
        return open_views(self.db_path, self.root, limits or DEFAULT_LIMITS, fs=None if self.is_local else self.fs)

    def read_table(self, table_name: str, filter_sql: str | None = None) -> pa.Table:
        """Rows of a table or view, optionally filtered by ONE boolean expression over its columns (e.g.
        ``"color = 'red'"``; storage.predicates). Runs on a locked-down connection.

        Base tables come back with exactly their schema; views with DuckDB's types.
        """
        import duckdb

        from storage.errors import PredicateError
        from storage.predicates import validate_predicate
        from storage.schemas import SCHEMAS, conform_table

        con = self.connect()
        try:
            known = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
            if table_name not in known:
                raise StoreError(f"unknown table or view {table_name!r}; known: {', '.join(sorted(known))}")
            sql = f'SELECT * FROM "{table_name}"'
            if filter_sql:
                columns = [r[0] for r in con.execute(f'DESCRIBE "{table_name}"').fetchall()]
                try:
                    sql += " WHERE " + validate_predicate(filter_sql, {table_name: columns})
                except PredicateError as exc:
                    raise StoreError(f"reading {table_name} with filter {filter_sql!r} failed: {exc.reason}") from exc
            try:
                result = con.sql(sql).to_arrow_table()
            except duckdb.Error as exc:
                raise StoreError(f"reading {table_name} with filter {filter_sql!r} failed: {exc}") from exc
        finally:
            con.close()
        return conform_table(table_name, result) if table_name in SCHEMAS else result

    def close(self) -> None:
        self.catalog.dispose()

