"""The DuckDB side of the views file: its internal tables and macros (schema ``_pixelrefer``) and views.

Used by storage.refresh, which decides what changed; every function here takes an open connection on the
views file being built.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from storage.errors import StoreError
from storage.layout import MATERIALIZED_TABLES, SCHEMA_VERSIONS, TABLE_NAMES, TABLE_STAGE, parquet_tables
from storage.lockdown import META_DIR
from storage.schemas import SCHEMAS, empty_table
from storage.unitfiles import FileStat
from storage.vectors import vector_view_values
from storage.views import INTERNAL_SCHEMA, render_view_sql, view_files

if TYPE_CHECKING:
    from storage.store import Store

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "catalog_copies",
    "catalog_signature",
    "create_internal",
    "create_views",
    "open_build",
    "read_info",
    "replace_table",
    "update_table",
    "view_base",
]

FORMAT_VERSION = "2"
_TABLE = re.compile(r"^(\s*--[^\n]*\n)*\s*CREATE\s+OR\s+REPLACE\s+TABLE\s", re.IGNORECASE)
_S = INTERNAL_SCHEMA
_INSERT_CHUNK = 2000  # files per INSERT ... FROM read_parquet([...])
# One row per unit file included (the manifest a refresh compares the files with).
MANIFEST = pa.schema([
    ("table_name", pa.string()), ("video_id", pa.string()), ("unit_key", pa.string()), ("size", pa.int64()),
    ("mtime_ns", pa.int64()), ("rows", pa.int64()), ("schema_version", pa.int32()),
])
# Every video folder listed, with the mtime a later listing may trust (-1: list it again).
FOLDERS = pa.schema([("table_name", pa.string()), ("video_id", pa.string()), ("mtime_ns", pa.int64())])


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def materialized_versions() -> str:
    return json.dumps({t: SCHEMA_VERSIONS[t] for t in MATERIALIZED_TABLES}, sort_keys=True)


def read_info(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    try:
        return dict(con.execute(f"SELECT key, value FROM {_S}.info").fetchall())
    except duckdb.Error:
        return {}


def create_internal(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_S}")
    for table in MATERIALIZED_TABLES:
        empty = empty_table(table).append_column("_unit_key", pa.array([], pa.string()))
        con.register("_empty", empty)
        con.execute(f"CREATE OR REPLACE TABLE {_S}.{table} AS SELECT * FROM _empty")
        con.unregister("_empty")
    replace_table(con, "files", MANIFEST.empty_table())
    replace_table(con, "folders", FOLDERS.empty_table())


def replace_table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register("_incoming", table)
    con.execute(f"CREATE OR REPLACE TABLE {_S}.{name} AS SELECT * FROM _incoming")
    con.unregister("_incoming")


def catalog_signature(store: Store) -> str:
    """Changes whenever what `catalog_copies` copies changes (cheap: counts and latest times only)."""
    from sqlalchemy import func, select

    from storage.catalog import requests_t, units_t, video_paths_t

    stage = TABLE_STAGE.get("objects", "track")
    queries = [
        select(func.count(), func.max(requests_t.c.requested_at)).where(requests_t.c.stage == stage),
        select(func.count(), func.max(units_t.c.updated_at)).where(units_t.c.stage == stage),
        select(func.count(), func.max(video_paths_t.c.last_seen)),
    ]
    with store.catalog.engine.connect() as con:
        return json.dumps([[str(v) for v in con.execute(q).one()] for q in queries])


def catalog_copies(con: duckdb.DuckDBPyConnection, store: Store) -> None:
    """Copy what the views need from the catalog: requests and units of the tracking stage, video paths."""
    stage = TABLE_STAGE.get("objects", "track")
    requests = store.catalog.requests(stage=stage)
    replace_table(con, "requests", pa.table({
        "stage": pa.array([r.stage for r in requests], pa.string()),
        "video_id": pa.array([r.video_id for r in requests], pa.string()),
        "unit_key": pa.array([r.unit_key for r in requests], pa.string()),
        "requested_at": pa.array([r.requested_at for r in requests], pa.timestamp("us")),
    }))
    units = store.catalog.units(stage=stage)
    replace_table(con, "catalog_units", pa.table({
        "stage": pa.array([u.stage for u in units], pa.string()),
        "video_id": pa.array([u.video_id for u in units], pa.string()),
        "unit_key": pa.array([u.unit_key for u in units], pa.string()),
        "state": pa.array([u.state for u in units], pa.string()),
    }))
    paths = store.catalog.video_paths()
    replace_table(con, "video_paths", pa.table({
        "video_id": pa.array([p.video_id for p in paths], pa.string()),
        "uri": pa.array([p.uri for p in paths], pa.string()),
        "size_bytes": pa.array([p.size_bytes for p in paths], pa.int64()),
        "first_seen": pa.array([p.first_seen for p in paths], pa.timestamp("us")),
        "last_seen": pa.array([p.last_seen for p in paths], pa.timestamp("us")),
    }))


def view_base(store: Store) -> str:
    """How the views name the store's files: relative to the root for a local store (a copied or moved
    store keeps working), by URL for a remote one (storage.views)."""
    return "" if store.is_local else store.root.rstrip("/") + "/"


def open_build(path: str, store: Store) -> duckdb.DuckDBPyConnection:
    """A connection on the views file being built: never downloads an extension, reads a remote store's
    files through its fsspec filesystem, resolves relative names against a local root."""
    from storage.remote import duckdb_offline, register_filesystem

    con = duckdb.connect(path)
    try:
        duckdb_offline(con)
        if not store.is_local:
            register_filesystem(con, store.fs)
        con.execute(f"SET file_search_path = {sql_str(store.root)}")
    except BaseException:
        con.close()
        raise
    return con


def store_check(con: duckdb.DuckDBPyConnection, store_id: str | None, base: str = "") -> None:
    if store_id is None:  # a store without identity (read-only, made by an older version): no check
        con.execute(f"CREATE OR REPLACE MACRO {_S}.store_check() AS true")
        return
    marker = f"{base}{META_DIR}/store-{store_id}.id"
    message = (f"this views.duckdb belongs to pixelrefer store {store_id}, but its relative paths resolve to "
               "a folder that is not that store: SET file_search_path = '<the store folder>' (or start "
               "DuckDB in the store folder)")
    con.execute(f"CREATE OR REPLACE MACRO {_S}.store_check() AS (SELECT CASE WHEN count(*) > 0 THEN true "
                f"ELSE error({sql_str(message)}) END FROM glob({sql_str(marker)}))")


def update_table(con: duckdb.DuckDBPyConnection, store: Store, table: str, stale: list[tuple[str, str]],
                 new: list[FileStat], union: bool) -> None:
    """Delete the rows of `stale` units of a materialised table, then insert the rows of `new` files
    (`union`: some of them have an older schema version, read by name with the new columns null)."""
    if stale:
        con.register("_stale", pa.table({"video_id": [v for v, _ in stale], "unit_key": [k for _, k in stale]}))
        con.execute(f"DELETE FROM {_S}.{table} AS t USING _stale AS s "
                    "WHERE t.video_id = s.video_id AND t._unit_key = s.unit_key")
        con.unregister("_stale")
    columns = ", ".join(f'"{name}"' for name in SCHEMAS[table].names)
    for i in range(0, len(new), _INSERT_CHUNK):
        paths = ", ".join(sql_str(f"{store.root}/{f.path}") for f in new[i : i + _INSERT_CHUNK])
        con.execute(
            f"INSERT INTO {_S}.{table} BY NAME "
            f"SELECT {columns}, regexp_extract(filename, '([^/]+)\\.parquet$', 1) AS _unit_key "
            f"FROM read_parquet([{paths}], filename = true, hive_partitioning = false"
            + (", union_by_name = true)" if union else ")")
        )


def create_views(con: duckdb.DuckDBPyConnection, store_id: str | None, previous: str = "",
                 base: str = "") -> tuple[list[str], str]:
    """Zero-row tables, the store check, the tables computed by sql/views (``CREATE OR REPLACE TABLE``, run
    at every refresh) and its views and macros (run only when their SQL differs from `previous`: creating a
    view over Parquet lists the files to bind it, which costs in a big archive).

    Returns (Parquet tables read with union_by_name, digest of the view SQL to pass as `previous` next time)."""
    for table in parquet_tables():  # zero-row tables with the current schema (empty views, macros)
        replace_table(con, f"empty_{table}", empty_table(table))
    store_check(con, store_id, base)
    counts = dict(con.execute(f"SELECT table_name, count(*) FROM {_S}.files GROUP BY ALL").fetchall())
    versions = ", ".join(f"({sql_str(t)}, {v})" for t, v in SCHEMA_VERSIONS.items())
    union = [t for t, in con.execute(
        f"SELECT DISTINCT table_name FROM {_S}.files f JOIN (VALUES {versions}) AS cur(t, v) "
        "ON f.table_name = cur.t WHERE f.schema_version < cur.v").fetchall()]
    with_files = [t for t in parquet_tables() if counts.get(t)]
    # The vector views are typed by the store's current embedder (FLOAT[dim]): a new one changes the digest.
    rendered = render_view_sql(with_files, union, vector_view_values(con), base)
    digest = hashlib.sha256("\0".join(rendered).encode()).hexdigest()[:16]
    for path, sql in zip(view_files(), rendered, strict=True):
        try:
            for statement in con.extract_statements(sql):
                if digest != previous or _TABLE.match(statement.query):
                    con.execute(statement.query)
        except duckdb.Error as exc:
            raise StoreError(f"view definition {path.name} failed: {exc}") from exc
    return sorted(union), digest


def file_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts = dict(con.execute(f"SELECT table_name, count(*) FROM {_S}.files GROUP BY ALL").fetchall())
    return {t: int(counts.get(t, 0)) for t in TABLE_NAMES}
