"""DuckDB views over the Parquet tables: render the DDL of ``sql/views/*.sql`` and build the views file.

Each ``sql/views/NN_<name>.sql`` file is plain SQL run in file-name order, with placeholders filled
here (plain text replacement, so braces elsewhere in the SQL are safe):

- ``{root}``: the store root (absolute path or URL), quoted for a SQL string literal;
- ``{source:<table>}``: ``read_parquet('<root>/<table>/video_id=*/*.parquet', hive_partitioning ...,
  union_by_name ...)`` when that table has files, else a typed empty relation with the table's
  columns, so every view exists with the right columns from the first refresh on.

Globs name only ``*.parquet`` files; writers' temporaries end in ``.partial`` and are never read.
The glob is evaluated at query time: new files of a table that already had files appear in the views
without a refresh; only a table's first files need one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from storage.errors import StoreError
from storage.schemas import SCHEMAS

__all__ = ["VIEWS_DIR", "view_names", "render_view_sql", "create_views", "build_views_file"]

log = logging.getLogger(__name__)

VIEWS_DIR = Path(__file__).resolve().parents[1] / "sql" / "views"


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_type(type_: pa.DataType) -> str:
    """The DuckDB type name of a pyarrow type used in our schemas."""
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "VARCHAR"
    if pa.types.is_int64(type_):
        return "BIGINT"
    if pa.types.is_int32(type_):
        return "INTEGER"
    if pa.types.is_float64(type_):
        return "DOUBLE"
    if pa.types.is_float32(type_):
        return "FLOAT"
    if pa.types.is_boolean(type_):
        return "BOOLEAN"
    if pa.types.is_timestamp(type_):
        return "TIMESTAMPTZ" if type_.tz else "TIMESTAMP"
    if pa.types.is_list(type_):
        return duckdb_type(type_.value_type) + "[]"
    raise StoreError(f"no DuckDB type for pyarrow type {type_}")


def parquet_glob(root: str, table: str) -> str:
    return f"{root.rstrip('/')}/{table}/video_id=*/*.parquet"


def table_source(root: str, table: str, has_files: bool) -> str:
    """The FROM-clause relation of base table `table` (see module docstring)."""
    if has_files:
        return (
            f"read_parquet({_sql_str(parquet_glob(root, table))}, hive_partitioning = true, "
            "union_by_name = true, hive_types = {'video_id': 'VARCHAR'})"
        )
    cols = ", ".join(f"CAST(NULL AS {duckdb_type(f.type)}) AS {f.name}" for f in SCHEMAS[table])
    return f"(SELECT {cols} LIMIT 0)"


def view_files() -> list[Path]:
    files = sorted(VIEWS_DIR.glob("*.sql"))
    if not files:
        raise StoreError(f"no view definitions found in {VIEWS_DIR}")
    return files


def view_names() -> list[str]:
    """Names of the views, in creation order (file name NN_<name>.sql -> <name>)."""
    return [p.stem.split("_", 1)[1] for p in view_files()]


def render_view_sql(root: str, tables_with_files: Iterable[str]) -> list[str]:
    """The DDL of every view with placeholders filled, one string per file, in order."""
    with_files = set(tables_with_files)
    out = []
    for path in view_files():
        sql = path.read_text()
        sql = sql.replace("{root}", _sql_str(root))
        for table in SCHEMAS:
            sql = sql.replace("{source:" + table + "}", table_source(root, table, table in with_files))
        out.append(sql)
    return out


def create_views(con: duckdb.DuckDBPyConnection, root: str, tables_with_files: Iterable[str]) -> None:
    """Create (or replace) every view on an open connection."""
    for path, sql in zip(view_files(), render_view_sql(root, tables_with_files), strict=True):
        try:
            con.execute(sql)
        except duckdb.Error as exc:
            raise StoreError(f"view definition {path.name} failed: {exc}") from exc


@contextmanager
def exclusive_lock(lock_path: str):
    """An exclusive advisory lock (fcntl) on `lock_path`, held for the with-block; waits for it."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def build_views_file(db_path: str, root: str, tables_with_files: Iterable[str]) -> None:
    """(Re)build the DuckDB file `db_path` holding only the views; readers never see it half-built.

    One writer at a time (lock file ``<db_path>.lock``). The new database is built under a hidden
    temporary name in the same folder, closed (checkpointed) and renamed over the old one, so a
    reader that opens `db_path` read-only sees either the old or the new complete file, and never
    meets DuckDB's writer lock.
    """
    folder = os.path.dirname(os.path.abspath(db_path))
    os.makedirs(folder, exist_ok=True)
    tables = list(tables_with_files)
    with exclusive_lock(db_path + ".lock"):
        tmp = os.path.join(folder, f".views-{uuid.uuid4().hex}.duckdb.partial")
        try:
            con = duckdb.connect(tmp)
            try:
                create_views(con, root, tables)
                con.execute("CHECKPOINT")
            finally:
                con.close()
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, db_path)
        finally:
            for leftover in (tmp, tmp + ".wal"):
                if os.path.exists(leftover):
                    os.remove(leftover)
    log.info("refreshed views in %s (tables with files: %s)", db_path, sorted(tables) or "none")
