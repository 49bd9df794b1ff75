"""The unit files of a store: listing them cheaply, and checking one from its Parquet footer alone.

`list_unit_files` walks ``<root>/<table>/video_id=*/*.parquet`` (``os.scandir`` for a local root, one
``find`` for an fsspec root) and returns each complete unit file with its size and modification time:
what the views refresh compares with its manifest to find the units that changed.

`inspect_file` reads only the footer (a few KB at the end of the file) and says whether the file is
usable: readable, of a known schema version of its table, with the row count the catalog recorded.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from storage.layout import SCHEMA_VERSIONS, TABLE_NAMES

if TYPE_CHECKING:
    from storage.store import Store

__all__ = ["FileStat", "Listing", "UNIT_FILE_STATES", "UnitFileState", "inspect_file", "list_unit_files", "scan_unit_files"]

FileState = Literal["ok", "missing", "unreadable", "foreign_schema", "row_count_mismatch"]
UNIT_FILE_STATES: tuple[str, ...] = ("ok", "missing", "unreadable", "foreign_schema", "row_count_mismatch")


@dataclass(frozen=True)
class FileStat:
    """One complete unit file: `path` is relative to the store root."""

    table: str
    video_id: str
    unit_key: str
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class UnitFileState:
    """What the footer of one unit file says. `state` is one of UNIT_FILE_STATES; `reason` explains every
    state but 'ok'; `rows` / `schema_version` are known when the footer could be read."""

    table: str
    video_id: str
    unit_key: str
    path: str
    state: FileState
    reason: str | None = None
    rows: int | None = None
    schema_version: int | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"


# A folder modified less than this long before a listing may still change within the same mtime tick:
# its mtime is not trusted by the next listing (that folder is listed again).
_RACY_NS = 2_000_000_000


@dataclass
class Listing:
    """A listing of unit files. `files`: the files of the folders listed now (`scanned`); `folders`: every
    video folder present, (table, video_id) -> mtime_ns (-1: too recent, or unknown, to be trusted)."""

    files: dict[str, list[FileStat]] = field(default_factory=dict)
    scanned: set[tuple[str, str]] = field(default_factory=set)
    folders: dict[tuple[str, str], int] = field(default_factory=dict)


def _scan_folder(table: str, folder: os.DirEntry[str], video_id: str) -> list[FileStat]:
    out: list[FileStat] = []
    try:
        entries = list(os.scandir(folder.path))
    except FileNotFoundError:  # removed while listing
        return out
    for entry in entries:
        name = entry.name
        if name.startswith(".") or not name.endswith(".parquet"):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        out.append(FileStat(table, video_id, name[: -len(".parquet")], f"{table}/{folder.name}/{name}",
                            st.st_size, st.st_mtime_ns))
    return out


def _scan_local(root: str, table: str, trusted: dict[tuple[str, str], int], listing: Listing) -> None:
    """List one table. A video folder whose mtime equals its `trusted` one is not listed again: writers
    create, rename and delete files in it, each of which changes that mtime (a file rewritten in place,
    without a rename, is not seen: `verify` reads every footer)."""
    base = os.path.join(root, table)
    try:
        folders = list(os.scandir(base))
    except FileNotFoundError:
        return
    now = time.time_ns()
    files = listing.files.setdefault(table, [])
    for folder in folders:
        if not folder.name.startswith("video_id=") or not folder.is_dir(follow_symlinks=False):
            continue
        video_id = folder.name.split("=", 1)[1]
        try:
            mtime = folder.stat(follow_symlinks=False).st_mtime_ns
        except FileNotFoundError:
            continue
        key = (table, video_id)
        listing.folders[key] = mtime if now - mtime > _RACY_NS else -1
        if trusted.get(key, -2) == mtime:
            continue
        listing.scanned.add(key)
        files.extend(_scan_folder(table, folder, video_id))


def _scan_fsspec(store: Store, table: str) -> list[FileStat]:
    out: list[FileStat] = []
    base = store.table_dir(table)
    if not store.fs.exists(base):
        return out
    for path, info in store.fs.find(base, detail=True).items():
        folder, name = path.rstrip("/").rsplit("/", 2)[-2:]
        if not folder.startswith("video_id=") or name.startswith(".") or not name.endswith(".parquet"):
            continue
        mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or 0
        mtime_ns = int(mtime.timestamp() * 1e9) if hasattr(mtime, "timestamp") else int(float(mtime) * 1e9)
        out.append(FileStat(table, folder.split("=", 1)[1], name[: -len(".parquet")], f"{table}/{folder}/{name}",
                            int(info.get("size") or 0), mtime_ns))
    return out


def scan_unit_files(store: Store, trusted: dict[tuple[str, str], int] | None = None,
                    tables: list[str] | None = None) -> Listing:
    """List the unit files of `tables` (default all); see Listing. `trusted`: the folder mtimes of a
    previous listing (local roots only: unchanged folders are not listed again)."""
    listing = Listing()
    for table in tables if tables is not None else list(TABLE_NAMES):
        if store.is_local:
            _scan_local(store.root, table, trusted or {}, listing)
        else:
            files = _scan_fsspec(store, table)
            listing.files[table] = files
            for f in files:
                listing.folders[(table, f.video_id)] = -1
                listing.scanned.add((table, f.video_id))
        listing.files.setdefault(table, []).sort(key=lambda f: (f.video_id, f.unit_key))
    return listing


def list_unit_files(store: Store, tables: list[str] | None = None) -> dict[str, list[FileStat]]:
    """{table: every unit file sorted by (video_id, unit_key)} (temporaries and hidden files excluded)."""
    return scan_unit_files(store, None, tables).files


def _schema_difference(table: str, found: dict[str, str]) -> str:
    from storage.schemas import SCHEMA_HISTORY, SCHEMAS

    want = {f.name: str(f.type) for f in SCHEMAS[table]}
    missing = sorted(set(want) - set(found))
    extra = sorted(set(found) - set(want))
    wrong = sorted(f"{n} is {found[n]}, not {want[n]}" for n in set(want) & set(found) if want[n] != found[n])
    parts = ([f"missing columns {missing}"] if missing else []) + ([f"unexpected columns {extra}"] if extra else [])
    parts += [f"column {w}" for w in wrong]
    versions = ", ".join(f"v{v}" for v in sorted(SCHEMA_HISTORY[table]))
    return f"not a {table} file of any known schema version ({versions}): " + ("; ".join(parts) or "schema differs")


def inspect_file(
    store: Store, table: str, video_id: str, unit_key: str, expected_rows: int | None = None
) -> UnitFileState:
    """Check one unit file from its footer (see module docstring); never raises for a damaged file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from storage.schemas import file_schema_version

    path = store.unit_path(table, video_id, unit_key)
    rel = path[len(store.root) + 1 :] if path.startswith(store.root + "/") else path
    base: dict[str, Any] = dict(table=table, video_id=video_id, unit_key=unit_key, path=rel)
    if not store.fs.exists(path):
        return UnitFileState(**base, state="missing", reason="the file does not exist")
    try:
        if store.is_local:
            meta = pq.read_metadata(path)
        else:
            with store.fs.open(path, "rb") as fh:
                meta = pq.read_metadata(fh)
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError, IndexError) as exc:
        return UnitFileState(**base, state="unreadable", reason=f"the Parquet footer cannot be read: {exc}")
    rows = int(meta.num_rows)
    version = file_schema_version(table, schema)
    if version is None:
        found = {f.name: str(f.type) for f in schema}
        return UnitFileState(**base, state="foreign_schema", reason=_schema_difference(table, found), rows=rows)
    if expected_rows is not None and rows != expected_rows:
        return UnitFileState(**base, state="row_count_mismatch", rows=rows, schema_version=version,
                             reason=f"the file has {rows} row(s), the catalog recorded {expected_rows}")
    reason = None if version == SCHEMA_VERSIONS[table] else f"schema version {version} (older; still read)"
    return UnitFileState(**base, state="ok", reason=reason, rows=rows, schema_version=version)
