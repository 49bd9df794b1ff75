"""The store of record: Parquet tables under one root, a catalog, and a DuckDB file of views.

Layout::

    <root>/catalog.sqlite                                   catalog (default; any SQLAlchemy URL otherwise)
    <root>/views.duckdb                                     views only (see storage.views)
    <root>/<table>/video_id=<video_id>/<unit_key>.parquet   one file per unit of work

File operations go through fsspec so the root may later be an object-store URL; local paths are what
is supported and tested today (a remote root needs an explicit catalog URL and a local db_path).

A unit is written to ``.tmp-<uuid>.parquet.partial`` in its final folder and renamed into place, so
re-writing a unit replaces it, and a crash leaves only a temporary that no reader globs
(``*.parquet``). Temporaries older than `stale_temp_s` are removed when the store is opened.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from dataclasses import dataclass

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from storage.catalog import Catalog
from storage.errors import StoreError
from storage.schemas import SCHEMAS, conform_table, schema_of
from storage.views import build_views_file, create_views

__all__ = ["Store", "TEMP_PREFIX", "TEMP_SUFFIX"]

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".parquet.partial"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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
    fs: fsspec.AbstractFileSystem

    @classmethod
    def open(
        cls,
        root: str | os.PathLike,
        catalog_url: str | None = None,
        create: bool = True,
        db_path: str | None = None,
        stale_temp_s: float = 3600.0,
    ) -> Store:
        """Open (or with `create`, make) the store at `root` and its catalog."""
        fs, path = fsspec.core.url_to_fs(str(root))
        local = isinstance(fs, LocalFileSystem)
        if local:
            path = os.path.abspath(path)
        if not fs.exists(path):
            if not create:
                raise StoreError(f"no store at {root!s}: the folder does not exist")
            fs.makedirs(path, exist_ok=True)
        if catalog_url is None:
            if not local:
                raise StoreError(f"store root {root!s} is not local: pass catalog_url (e.g. a PostgreSQL URL)")
            catalog_url = f"sqlite:///{os.path.join(path, 'catalog.sqlite')}"
        if db_path is None:
            if not local:
                raise StoreError(f"store root {root!s} is not local: pass a local db_path for the views")
            db_path = os.path.join(path, "views.duckdb")
        store = cls(root=path if local else str(root).rstrip("/"), db_path=db_path,
                    catalog=Catalog(catalog_url), fs=fs)
        store.clean_stale_temps(stale_temp_s)
        return store

    # -- paths ------------------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def table_dir(self, table_name: str) -> str:
        schema_of(table_name)
        return f"{self.root}/{table_name}"

    def unit_path(self, table_name: str, video_id: str, unit_key: str) -> str:
        _check_name("video_id", video_id)
        _check_name("unit_key", unit_key)
        return f"{self.table_dir(table_name)}/video_id={video_id}/{unit_key}.parquet"

    # -- units --------------------------------------------------------------------------------------
    def write_unit(self, table_name: str, video_id: str, unit_key: str, table: pa.Table) -> str:
        """Atomically write (or replace) one unit; returns its path.

        `table` is conformed to the table's schema (see `storage.schemas.conform_table`); its
        video_id column must be `video_id` in every row. A table of zero rows is a valid unit
        (e.g. a video with no objects).
        """
        final = self.unit_path(table_name, video_id, unit_key)
        table = conform_table(table_name, table)
        ids = set(table.column("video_id").unique().to_pylist())
        if ids - {video_id}:
            raise StoreError(
                f"{table_name} unit {unit_key!r}: rows carry video_id(s) {sorted(ids - {video_id})}, "
                f"not {video_id!r}"
            )
        folder = final.rsplit("/", 1)[0]
        self.fs.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/{TEMP_PREFIX}{uuid.uuid4().hex}{TEMP_SUFFIX}"
        try:
            if self.is_local:
                with open(tmp, "wb") as fh:
                    pq.write_table(table, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
            else:
                with self.fs.open(tmp, "wb") as fh:
                    pq.write_table(table, fh)
                self.fs.mv(tmp, final)
        except BaseException:
            try:
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)
            except OSError:  # pragma: no cover - best effort; stale temps are cleaned on open
                log.warning("could not remove temporary %s", tmp)
            raise
        log.debug("wrote %s (%d rows)", final, table.num_rows)
        return final

    def has_unit(self, table_name: str, video_id: str, unit_key: str) -> bool:
        return self.fs.exists(self.unit_path(table_name, video_id, unit_key))

    def delete_unit(self, table_name: str, video_id: str, unit_key: str) -> bool:
        """Remove one unit's file; True when there was one."""
        path = self.unit_path(table_name, video_id, unit_key)
        if not self.fs.exists(path):
            return False
        self.fs.rm(path)
        return True

    def list_units(self, table_name: str, video_id: str | None = None) -> list[tuple[str, str]]:
        """Sorted (video_id, unit_key) of the complete units of a table (temporaries excluded)."""
        pattern = f"{self.table_dir(table_name)}/video_id={video_id or '*'}/*.parquet"
        out = []
        for path in self.fs.glob(pattern):
            folder, name = path.rstrip("/").rsplit("/", 2)[-2:]
            if name.startswith("."):
                continue
            out.append((folder.split("=", 1)[1], name[: -len(".parquet")]))
        return sorted(out)

    def tables_with_files(self) -> list[str]:
        return [t for t in SCHEMAS if self.fs.glob(f"{self.table_dir(t)}/video_id=*/*.parquet")]

    def clean_stale_temps(self, older_than_s: float = 3600.0) -> int:
        """Remove writers' temporaries older than `older_than_s` (left by crashes); returns how many."""
        removed = 0
        now = time.time()
        for table in SCHEMAS:
            for path in self.fs.glob(f"{self.table_dir(table)}/video_id=*/{TEMP_PREFIX}*{TEMP_SUFFIX}"):
                try:
                    age = now - self.fs.modified(path).timestamp()
                    if age >= older_than_s:
                        self.fs.rm(path)
                        removed += 1
                except (OSError, NotImplementedError):  # pragma: no cover - vanished or no mtime
                    continue
        if removed:
            log.info("removed %d stale temporary file(s) under %s", removed, self.root)
        return removed

    # -- reading and views --------------------------------------------------------------------------
    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection with every view, over the files present now."""
        con = duckdb.connect()
        create_views(con, self.root, self.tables_with_files())
        return con

    def read_table(self, table_name: str, filter_sql: str | None = None) -> pa.Table:
        """Rows of a table or view, optionally filtered by a SQL predicate (e.g. ``"color = 'red'"``).

        Base tables come back with exactly their schema; views with DuckDB's types.
        """
        con = self.connect()
        try:
            known = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
            if table_name not in known:
                raise StoreError(f"unknown table or view {table_name!r}; known: {', '.join(sorted(known))}")
            sql = f'SELECT * FROM "{table_name}"' + (f" WHERE {filter_sql}" if filter_sql else "")
            try:
                result = con.sql(sql).to_arrow_table()
            except duckdb.Error as exc:
                raise StoreError(f"reading {table_name} with filter {filter_sql!r} failed: {exc}") from exc
        finally:
            con.close()
        return conform_table(table_name, result) if table_name in SCHEMAS else result

    def refresh_views(self) -> None:
        """Rebuild `db_path` (views only) atomically under a lock; see storage.views.build_views_file."""
        build_views_file(self.db_path, self.root, self.tables_with_files())

    def close(self) -> None:
        self.catalog.dispose()
