"""Refresh the views file: small tables copied in as native DuckDB tables, atomically and incrementally.

What the views file holds (one DuckDB file, ``<root>/views.duckdb``):

- schema ``_pixelrefer``: a native copy of every materialised table (storage.schemas.MATERIALIZED_TABLES)
  with one extra column ``_unit_key``; ``files`` (the manifest: every unit file included, with its size,
  modification time, row count and schema version); copies of the catalog's requests and units of the
  tracking stage and of its video paths; ``latest_tracks`` (computed by sql/views/10_latest_tracks.sql);
  ``info`` (format, store id, build time); the macro ``store_check()``;
- schema ``main``: the views and table macros of ``sql/views`` (storage.views).

A refresh takes ``<views file>.lock`` (one refresher at a time), lists the unit files, compares them
with the manifest of the current views file and only reads what changed: a copy of the current file is
updated (rows of changed or removed units deleted, rows of new or changed units inserted) and renamed
over the old one (storage.atomic), so a reader that opens the views file sees the previous complete
version or the new one, never a half-built file. A full rebuild happens when there is no usable views
file (first refresh, another format, another store, a materialised table's schema version changed) or
when more than half of the units changed.

Files that cannot serve (unreadable footer, foreign schema) are set aside (Store.quarantine, their units
re-queued) before anything is built on them: one bad file never fails a whole view nor adds NULL rows.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from storage.atomic import atomic_path
from storage.errors import StoreError
from storage.layout import MATERIALIZED_TABLES, SCHEMA_VERSIONS, TABLE_STAGE, parquet_tables
from storage.lockdown import META_DIR
from storage.schemas import SCHEMAS, empty_table
from storage.unitfiles import FileStat, inspect_file, list_unit_files
from storage.vectors import vector_view_values
from storage.views import INTERNAL_SCHEMA, render_view_sql, schema_file, view_files, views_digest

if TYPE_CHECKING:
    from storage.store import Store

__all__ = ["FORMAT_VERSION", "RefreshReport", "refresh_views"]

log = logging.getLogger(__name__)

FORMAT_VERSION = "2"
_S = INTERNAL_SCHEMA
_INSERT_CHUNK = 2000  # files per INSERT ... FROM read_parquet([...])
_MANIFEST = pa.schema([
    ("table_name", pa.string()), ("video_id", pa.string()), ("unit_key", pa.string()), ("size", pa.int64()),
    ("mtime_ns", pa.int64()), ("rows", pa.int64()), ("schema_version", pa.int32()),
])


@dataclass
class RefreshReport:
    """What one refresh did. `incremental`: an update of the previous views file (else a full build)."""

    seconds: float = 0.0
    incremental: bool = False
    files: dict[str, int] = field(default_factory=dict)  # unit files per table now in the views
    added: int = 0
    changed: int = 0
    removed: int = 0
    quarantined: list[str] = field(default_factory=list)  # paths (relative to the root) set aside


class _Unchanged(Exception):
    """Nothing changed since the current views file was built: keep it as it is."""


@dataclass(frozen=True)
class _Entry:
    size: int
    mtime_ns: int
    rows: int
    schema_version: int


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ensure_schema_files(store: Store) -> None:
    """Write the zero-row schema file of every Parquet table (what empty views and macros read)."""
    import pyarrow.parquet as pq

    for table in parquet_tables():
        path = f"{store.root}/{schema_file(table)}"
        if os.path.isfile(path):
            try:
                if pq.read_schema(path).equals(SCHEMAS[table]):
                    continue
            except (pa.ArrowException, OSError):
                pass
        with atomic_path(path) as tmp:
            pq.write_table(empty_table(table), tmp)


def _read_info(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    try:
        return dict(con.execute(f"SELECT key, value FROM {_S}.info").fetchall())
    except duckdb.Error:
        return {}


def _read_manifest(con: duckdb.DuckDBPyConnection, store_id: str | None) -> dict[tuple[str, str, str], _Entry] | None:
    """The manifest of a views file, or None when it cannot be updated in place (see module docstring)."""
    info = _read_info(con)
    tables = json.dumps({t: SCHEMA_VERSIONS[t] for t in MATERIALIZED_TABLES}, sort_keys=True)
    if info.get("format") != FORMAT_VERSION or info.get("store_id") != (store_id or "") or info.get("tables") != tables:
        return None
    rows = con.execute(f"SELECT table_name, video_id, unit_key, size, mtime_ns, rows, schema_version FROM {_S}.files")
    return {(t, v, k): _Entry(s, m, r, sv) for t, v, k, s, m, r, sv in rows.fetchall()}


def _create_internal(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_S}")
    for table in MATERIALIZED_TABLES:
        empty = empty_table(table).append_column("_unit_key", pa.array([], pa.string()))
        con.register("_empty", empty)
        con.execute(f"CREATE OR REPLACE TABLE {_S}.{table} AS SELECT * FROM _empty")
        con.unregister("_empty")
    con.register("_empty", _MANIFEST.empty_table())
    con.execute(f"CREATE OR REPLACE TABLE {_S}.files AS SELECT * FROM _empty")
    con.unregister("_empty")


def _replace_table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register("_incoming", table)
    con.execute(f"CREATE OR REPLACE TABLE {_S}.{name} AS SELECT * FROM _incoming")
    con.unregister("_incoming")


def _catalog_signature(store: Store) -> str:
    """Changes whenever what `_catalog_copies` copies changes (cheap: counts and latest times only)."""
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


def _catalog_copies(con: duckdb.DuckDBPyConnection, store: Store) -> None:
    """Copy what the views need from the catalog: requests and units of the tracking stage, video paths."""
    stage = TABLE_STAGE.get("objects", "track")
    requests = store.catalog.requests(stage=stage)
    _replace_table(con, "requests", pa.table({
        "stage": pa.array([r.stage for r in requests], pa.string()),
        "video_id": pa.array([r.video_id for r in requests], pa.string()),
        "unit_key": pa.array([r.unit_key for r in requests], pa.string()),
        "requested_at": pa.array([r.requested_at for r in requests], pa.timestamp("us")),
    }))
    units = store.catalog.units(stage=stage)
    _replace_table(con, "catalog_units", pa.table({
        "stage": pa.array([u.stage for u in units], pa.string()),
        "video_id": pa.array([u.video_id for u in units], pa.string()),
        "unit_key": pa.array([u.unit_key for u in units], pa.string()),
        "state": pa.array([u.state for u in units], pa.string()),
    }))
    paths = store.catalog.video_paths()
    _replace_table(con, "video_paths", pa.table({
        "video_id": pa.array([p.video_id for p in paths], pa.string()),
        "uri": pa.array([p.uri for p in paths], pa.string()),
        "size_bytes": pa.array([p.size_bytes for p in paths], pa.int64()),
        "first_seen": pa.array([p.first_seen for p in paths], pa.timestamp("us")),
        "last_seen": pa.array([p.last_seen for p in paths], pa.timestamp("us")),
    }))


def _store_check(con: duckdb.DuckDBPyConnection, store_id: str | None) -> None:
    if store_id is None:  # a store without identity (read-only, made by an older version): no check
        con.execute(f"CREATE OR REPLACE MACRO {_S}.store_check() AS true")
        return
    marker = f"{META_DIR}/store-{store_id}.id"
    message = (f"this views.duckdb belongs to pixelrefer store {store_id}, but its relative paths resolve to "
               "a folder that is not that store: SET file_search_path = '<the store folder>' (or start "
               "DuckDB in the store folder)")
    con.execute(f"CREATE OR REPLACE MACRO {_S}.store_check() AS (SELECT CASE WHEN count(*) > 0 THEN true "
                f"ELSE error({_sql_str(message)}) END FROM glob({_sql_str(marker)}))")


def _update_table(con: duckdb.DuckDBPyConnection, store: Store, table: str, stale: list[tuple[str, str]],
                  new: list[FileStat]) -> None:
    """Delete the rows of `stale` units of a materialised table, then insert the rows of `new` files."""
    if stale:
        con.register("_stale", pa.table({"video_id": [v for v, _ in stale], "unit_key": [k for _, k in stale]}))
        con.execute(f"DELETE FROM {_S}.{table} AS t USING _stale AS s "
                    "WHERE t.video_id = s.video_id AND t._unit_key = s.unit_key")
        con.unregister("_stale")
    columns = ", ".join(f'"{name}"' for name in SCHEMAS[table].names)
    for i in range(0, len(new), _INSERT_CHUNK):
        paths = ", ".join(_sql_str(f"{store.root}/{f.path}") for f in new[i : i + _INSERT_CHUNK])
        con.execute(
            f"INSERT INTO {_S}.{table} BY NAME "
            f"SELECT {columns}, regexp_extract(filename, '([^/]+)\\.parquet$', 1) AS _unit_key "
            f"FROM read_parquet([{paths}], union_by_name = true, filename = true, hive_partitioning = false)"
        )


def _build(tmp: str, store: Store, listing: dict[str, list[FileStat]], report: RefreshReport,
           store_id: str | None) -> None:
    """Bring the DuckDB file `tmp` (a copy of the current views file, or absent) up to date."""
    con = duckdb.connect(tmp)
    try:
        con.execute(f"SET file_search_path = {_sql_str(store.root)}")
        manifest = _read_manifest(con, store_id) if report.incremental else None
        info = _read_info(con) if manifest is not None else {}
        catalog_sig = _catalog_signature(store)
        if manifest is not None:
            now = {(t, f.video_id, f.unit_key) for t, fs in listing.items() for f in fs}
            changed_or_new = sum(1 for t, fs in listing.items() for f in fs
                                 if (e := manifest.get((t, f.video_id, f.unit_key))) is None
                                 or (e.size, e.mtime_ns) != (f.size, f.mtime_ns))
            n_gone = len(set(manifest) - now)
            if not changed_or_new and not n_gone and info.get("catalog") == catalog_sig \
                    and info.get("views") == views_digest():
                report.files = {t: len(listing.get(t, [])) for t in SCHEMAS}
                raise _Unchanged
            if changed_or_new + n_gone > max(100, len(now) // 2):
                manifest = None
        if manifest is None:
            report.incremental = False
            con.close()
            for leftover in (tmp, tmp + ".wal"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            con = duckdb.connect(tmp)
            con.execute(f"SET file_search_path = {_sql_str(store.root)}")
            _create_internal(con)
            manifest = {}
        rows: list[tuple[str, str, str, int, int, int, int]] = []
        stale_manifest: list[tuple[str, str, str]] = []
        for table, files in listing.items():
            seen = set()
            new: list[FileStat] = []
            stale: list[tuple[str, str]] = []
            for f in files:
                seen.add((f.video_id, f.unit_key))
                old = manifest.get((table, f.video_id, f.unit_key))
                if old is not None and (old.size, old.mtime_ns) == (f.size, f.mtime_ns):
                    continue
                st = inspect_file(store, table, f.video_id, f.unit_key)
                if not st.ok and st.state in ("unreadable", "foreign_schema"):
                    moved = store.quarantine(table, f.video_id, f.unit_key, st.reason or st.state)
                    if moved:
                        report.quarantined.append(moved)
                    if old is not None:
                        stale.append((f.video_id, f.unit_key))
                        stale_manifest.append((table, f.video_id, f.unit_key))
                    continue
                if old is None:
                    report.added += 1
                else:
                    report.changed += 1
                    stale.append((f.video_id, f.unit_key))
                    stale_manifest.append((table, f.video_id, f.unit_key))
                new.append(f)
                rows.append((table, f.video_id, f.unit_key, f.size, f.mtime_ns, st.rows or 0,
                             st.schema_version or SCHEMA_VERSIONS[table]))
            gone = [(v, k) for (t, v, k) in manifest if t == table and (v, k) not in seen]
            report.removed += len(gone)
            stale += gone
            stale_manifest += [(table, v, k) for v, k in gone]
            if table in MATERIALIZED_TABLES:
                _update_table(con, store, table, stale, new)
        if stale_manifest:
            con.register("_stale", pa.table({n: [s[i] for s in stale_manifest]
                                             for i, n in enumerate(("table_name", "video_id", "unit_key"))}))
            con.execute(f"DELETE FROM {_S}.files AS f USING _stale AS s WHERE f.table_name = s.table_name "
                        "AND f.video_id = s.video_id AND f.unit_key = s.unit_key")
            con.unregister("_stale")
        if rows:
            con.register("_new", pa.Table.from_pylist(
                [dict(zip(_MANIFEST.names, r, strict=True)) for r in rows], schema=_MANIFEST))
            con.execute(f"INSERT INTO {_S}.files SELECT * FROM _new")
            con.unregister("_new")
        if info.get("catalog") != catalog_sig:
            _catalog_copies(con, store)
        _store_check(con, store_id)
        counts = dict(con.execute(f"SELECT table_name, count(*) FROM {_S}.files GROUP BY ALL").fetchall())
        report.files = {t: int(counts.get(t, 0)) for t in SCHEMAS}
        union = [t for t, in con.execute(
            f"SELECT DISTINCT table_name FROM {_S}.files f JOIN (VALUES "
            + ", ".join(f"({_sql_str(t)}, {v})" for t, v in SCHEMA_VERSIONS.items())
            + ") AS cur(t, v) ON f.table_name = cur.t WHERE f.schema_version < cur.v").fetchall()]
        with_files = [t for t in parquet_tables() if report.files.get(t)]
        rendered = render_view_sql(with_files, union, vector_view_values(con))
        for path, sql in zip(view_files(), rendered, strict=True):
            try:
                con.execute(sql)
            except duckdb.Error as exc:
                raise StoreError(f"view definition {path.name} failed: {exc}") from exc
        info = {"format": FORMAT_VERSION, "store_id": store_id or "", "views": views_digest(), "catalog": catalog_sig,
                "tables": json.dumps({t: SCHEMA_VERSIONS[t] for t in MATERIALIZED_TABLES}, sort_keys=True),
                "union_by_name": json.dumps(sorted(union)), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _replace_table(con, "info", pa.table({"key": list(info), "value": list(info.values())}))
        con.execute("CHECKPOINT")
    finally:
        con.close()


def refresh_views(store: Store) -> RefreshReport:
    """Bring the views file of `store` up to date (see module docstring); returns what it did."""
    from filelock import FileLock

    store.require_writable("refreshing the views")
    started = time.perf_counter()
    store_id = store.store_id()
    folder = os.path.dirname(store.db_path)
    os.makedirs(folder, exist_ok=True)
    with FileLock(store.db_path + ".lock", timeout=600):
        _ensure_schema_files(store)
        for attempt in range(3):
            report = RefreshReport()
            listing = list_unit_files(store)
            try:
                with atomic_path(store.db_path, prefix=".views-", suffix=".duckdb.partial") as tmp:
                    try:
                        if os.path.isfile(store.db_path):
                            shutil.copyfile(store.db_path, tmp)
                            report.incremental = True
                        _build(tmp, store, listing, report, store_id)
                    finally:
                        if os.path.exists(tmp + ".wal"):
                            os.remove(tmp + ".wal")
                break
            except _Unchanged:
                break
            except duckdb.IOException as exc:  # a unit file vanished while being read: list again
                if attempt == 2:
                    raise StoreError(f"refreshing the views of {store.root} failed: {exc}") from exc
                log.info("a unit file changed during the refresh (%s); listing again", exc)
    report.seconds = time.perf_counter() - started
    log.info("refreshed views in %s in %.2f s (%s; +%d ~%d -%d units%s)", store.db_path, report.seconds,
             "incremental" if report.incremental else "full build", report.added, report.changed, report.removed,
             f", {len(report.quarantined)} file(s) set aside" if report.quarantined else "")
    return report

