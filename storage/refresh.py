"""Refresh the views file: small tables copied in as native DuckDB tables, atomically and incrementally.

What the views file holds (one DuckDB file, ``<root>/views.duckdb``; built by storage.views_file):

- schema ``_pixelrefer``: a native copy of every materialised table (storage.layout.MATERIALIZED_TABLES)
  with one extra column ``_unit_key``; ``files`` (the manifest: every unit file included, with its size,
  modification time, row count and schema version); ``folders`` (every video folder listed, with its
  mtime); copies of the catalog's requests and units of the tracking stage and of its video paths;
  ``latest_tracks`` (computed by sql/views/10_latest_tracks.sql); ``empty_<table>`` (zero-row tables of
  the Parquet-read tables); ``info`` (format, store id, build time); the macro ``store_check()``;
- schema ``main``: the views and table macros of ``sql/views`` (storage.views).

A refresh takes ``<views file>.lock`` (one refresher at a time) and works on a copy of the current views
file, renamed over it at the end (storage.atomic): a reader sees the previous complete version or the new
one, never a half-built file. It lists the video folders of every table; a folder whose mtime is the one
recorded (and old enough to be trusted) is not listed again: writers create, rename and delete files in it,
each of which changes its mtime. Only the folders that changed are compared file by file with the
manifest; rows of changed or removed units are deleted, rows of new or changed units inserted. Nothing
changed: the views file is left as it is. A full build happens when there is no usable views file (first
refresh, another format, another store, a materialised table's schema version changed) or when more than
half of the units changed.

Files that cannot serve (unreadable footer, foreign schema) are set aside (Store.quarantine, their units
re-queued) before anything is built on them: one bad file never fails a whole view nor adds NULL rows.
"""

from __future__ import annotations

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
from storage.layout import MATERIALIZED_TABLES, SCHEMA_VERSIONS
from storage.unitfiles import FileStat, Listing, inspect_file, scan_unit_files
from storage.views import INTERNAL_SCHEMA, views_digest
from storage.views_file import (
    FOLDERS,
    FORMAT_VERSION,
    MANIFEST,
    catalog_copies,
    catalog_signature,
    create_internal,
    create_views,
    file_counts,
    materialized_versions,
    open_build,
    read_info,
    replace_table,
    update_table,
    view_base,
)

if TYPE_CHECKING:
    from storage.store import Store

__all__ = ["RefreshReport", "refresh_views"]

log = logging.getLogger(__name__)

_S = INTERNAL_SCHEMA
UnitKey = tuple[str, str, str]  # (table, video_id, unit_key)


@dataclass
class RefreshReport:
    """What one refresh did. `incremental`: an update of the previous views file (else a full build);
    `unchanged`: nothing had changed, the views file was kept as it was."""

    seconds: float = 0.0
    incremental: bool = False
    unchanged: bool = False
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


def _usable(info: dict[str, str], store_id: str | None, base: str) -> bool:
    """Can this views file be updated in place (rather than rebuilt)?"""
    return (info.get("format") == FORMAT_VERSION and info.get("store_id") == (store_id or "")
            and info.get("tables") == materialized_versions() and info.get("root", "") == base.rstrip("/"))


def _old_folders(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int]:
    return {(t, v): m for t, v, m in con.execute(f"SELECT table_name, video_id, mtime_ns FROM {_S}.folders").fetchall()}


def _manifest_of(con: duckdb.DuckDBPyConnection, folders: set[tuple[str, str]]) -> dict[UnitKey, _Entry]:
    """The manifest rows of the given (table, video_id) folders."""
    if not folders:
        return {}
    con.register("_folders", pa.table({"table_name": [t for t, _ in folders], "video_id": [v for _, v in folders]}))
    rows = con.execute(f"SELECT f.table_name, f.video_id, f.unit_key, f.size, f.mtime_ns FROM {_S}.files AS f "
                       "JOIN _folders AS c USING (table_name, video_id)").fetchall()
    con.unregister("_folders")
    return {(t, v, k): _Entry(s, m) for t, v, k, s, m in rows}


@dataclass
class _Diff:
    new: dict[str, list[FileStat]] = field(default_factory=dict)  # files to insert, per table
    stale: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # units whose rows go, per table
    manifest_rows: list[dict[str, object]] = field(default_factory=list)
    manifest_gone: list[UnitKey] = field(default_factory=list)
    union: set[str] = field(default_factory=set)  # tables with new files of an older schema version


def _diff(store: Store, listing: Listing, folders: set[tuple[str, str]], manifest: dict[UnitKey, _Entry],
          report: RefreshReport) -> _Diff:
    """Compare the files of `folders` with their manifest rows; bad new files are set aside here."""
    diff = _Diff()
    seen: set[UnitKey] = set()
    for table, files in listing.files.items():
        for f in files:
            key = (table, f.video_id, f.unit_key)
            seen.add(key)
            old = manifest.get(key)
            if old is not None and (old.size, old.mtime_ns) == (f.size, f.mtime_ns):
                continue
            if old is not None:
                diff.stale.setdefault(table, []).append((f.video_id, f.unit_key))
                diff.manifest_gone.append(key)
            st = inspect_file(store, table, f.video_id, f.unit_key)
            if st.state == "missing":  # removed since the listing
                continue
            if not st.ok and st.state in ("unreadable", "foreign_schema"):
                moved = store.quarantine(table, f.video_id, f.unit_key, st.reason or st.state)
                if moved:
                    report.quarantined.append(moved)
                continue
            report.added += old is None
            report.changed += old is not None
            version = st.schema_version or SCHEMA_VERSIONS[table]
            if version < SCHEMA_VERSIONS[table]:
                diff.union.add(table)
            diff.new.setdefault(table, []).append(f)
            diff.manifest_rows.append(dict(table_name=table, video_id=f.video_id, unit_key=f.unit_key, size=f.size,
                                           mtime_ns=f.mtime_ns, rows=st.rows or 0, schema_version=version))
    for key in manifest.keys() - seen:  # files gone from the folders that changed (or folders gone)
        if (key[0], key[1]) in folders:
            diff.stale.setdefault(key[0], []).append((key[1], key[2]))
            diff.manifest_gone.append(key)
            report.removed += 1
    return diff


def _apply(con: duckdb.DuckDBPyConnection, store: Store, diff: _Diff) -> None:
    for table in MATERIALIZED_TABLES:
        if diff.stale.get(table) or diff.new.get(table):
            update_table(con, store, table, diff.stale.get(table, []), diff.new.get(table, []), table in diff.union)
    if diff.manifest_gone:
        con.register("_gone", pa.table({n: [k[i] for k in diff.manifest_gone]
                                        for i, n in enumerate(("table_name", "video_id", "unit_key"))}))
        con.execute(f"DELETE FROM {_S}.files AS f USING _gone AS g WHERE f.table_name = g.table_name "
                    "AND f.video_id = g.video_id AND f.unit_key = g.unit_key")
        con.unregister("_gone")
    if diff.manifest_rows:
        con.register("_new", pa.Table.from_pylist(diff.manifest_rows, schema=MANIFEST))
        con.execute(f"INSERT INTO {_S}.files SELECT * FROM _new")
        con.unregister("_new")


def _build(tmp: str, store: Store, report: RefreshReport, store_id: str | None) -> None:
    """Bring the DuckDB file `tmp` (a copy of the current views file, or absent) up to date."""
    base = view_base(store)
    con = open_build(tmp, store)
    try:
        info = read_info(con) if report.incremental else {}
        old_folders = _old_folders(con) if _usable(info, store_id, base) else None
        trusted = {k: m for k, m in (old_folders or {}).items() if m >= 0}
        listing = scan_unit_files(store, trusted)
        catalog_sig = catalog_signature(store)
        changed = listing.scanned | (set(old_folders or {}) - set(listing.folders))
        manifest = _manifest_of(con, changed) if old_folders is not None else {}
        if old_folders is not None:
            diff = _diff(store, listing, changed, manifest, report)
            n_units = sum(file_counts(con).values())
            if (not diff.new and not diff.stale and listing.folders == old_folders
                    and info.get("catalog") == catalog_sig and info.get("views") == views_digest()):
                report.files = file_counts(con)
                raise _Unchanged
            if report.added + report.changed + report.removed > max(100, n_units // 2):
                old_folders = None  # most of it changed: a full build is cheaper
        if old_folders is None:
            report.incremental = False
            report.added = report.changed = report.removed = 0
            con.close()
            for leftover in (tmp, tmp + ".wal"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            con = open_build(tmp, store)
            create_internal(con)
            info = {}
            listing = scan_unit_files(store, None)  # every folder's files
            diff = _diff(store, listing, set(listing.folders), {}, report)
        _apply(con, store, diff)
        replace_table(con, "folders", pa.table({
            "table_name": [t for t, _ in listing.folders], "video_id": [v for _, v in listing.folders],
            "mtime_ns": pa.array(list(listing.folders.values()), pa.int64())}, schema=FOLDERS))
        if info.get("catalog") != catalog_sig:
            catalog_copies(con, store)
        union, view_sql = create_views(con, store_id, info.get("view_sql", ""), base)
        report.files = file_counts(con)
        # root: '' for a local store (its views name files relative to it), the URL of a remote one
        meta = {"format": FORMAT_VERSION, "store_id": store_id or "", "views": views_digest(), "catalog": catalog_sig,
                "view_sql": view_sql, "root": base.rstrip("/"),
                "tables": materialized_versions(), "union_by_name": ",".join(union),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        replace_table(con, "info", pa.table({"key": list(meta), "value": list(meta.values())}))
        con.execute("CHECKPOINT")
    finally:
        con.close()


def refresh_views(store: Store) -> RefreshReport:
    """Bring the views file of `store` up to date (see module docstring); returns what it did."""
    from filelock import FileLock

    store.require_writable("refreshing the views")
    started = time.perf_counter()
    store_id = store.store_id()
    os.makedirs(os.path.dirname(store.db_path), exist_ok=True)
    with FileLock(store.db_path + ".lock", timeout=600):
        for attempt in range(3):
            report = RefreshReport()
            try:
                with atomic_path(store.db_path, prefix=".views-", suffix=".duckdb.partial") as tmp:
                    try:
                        if os.path.isfile(store.db_path):
                            shutil.copyfile(store.db_path, tmp)
                            report.incremental = True
                        _build(tmp, store, report, store_id)
                    finally:
                        if os.path.exists(tmp + ".wal"):
                            os.remove(tmp + ".wal")
                break
            except _Unchanged:
                report.unchanged = True
                break
            except duckdb.IOException as exc:  # a unit file vanished while being read: list again
                if attempt == 2:
                    raise StoreError(f"refreshing the views of {store.root} failed: {exc}") from exc
                log.info("a unit file changed during the refresh (%s); listing again", exc)
    report.seconds = time.perf_counter() - started
    log.info("refreshed views in %s in %.2f s (%s; +%d ~%d -%d units%s)", store.db_path, report.seconds,
             "unchanged" if report.unchanged else "incremental" if report.incremental else "full build",
             report.added, report.changed, report.removed,
             f", {len(report.quarantined)} file(s) set aside" if report.quarantined else "")
    return report

