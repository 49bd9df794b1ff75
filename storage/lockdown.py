"""DuckDB connections that run user SQL: only the store's own data files can be read, nothing written.

`lock_down(con, root, ...)` applies DuckDB's own settings, in the order DuckDB requires:

1. ``file_search_path`` = the store root (the views file names its Parquet files relative to the root),
   ``temp_directory`` (a private folder outside the store, so read-only stores work) and its size cap;
2. ``allowed_directories`` = the store's Parquet table folders and its ``_store/`` folder (absolute,
   and as the relative names the views use), then ``enable_external_access = false``: every other
   path on the machine is refused (``read_text('/etc/passwd')``, ``glob('/*')``, ``/proc/self/environ``,
   ATTACH, COPY TO, ...);
3. no extension autoload / autoinstall, a memory limit and a thread count;
4. ``lock_configuration = true`` last: the query cannot change any of it (``SET`` fails).

`prepare(con)`, when given, runs just before the lock: the place for a caller to register what the
queries may use (e.g. the CLI's ``embed(text)`` scalar function, a Python UDF) or to turn off the
progress bar. It runs after external access is off, so it cannot open files either.

Statement types are checked separately (storage.query.check_read_only): COPY, ATTACH, SET ... are
refused before they run; the lockdown is what makes reads of other files impossible even when a
statement type is allowed.

Note: DuckDB shares one database instance per file within a process, so a locked-down views file stays
locked for every connection of this process until all of them are closed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import duckdb

from storage.errors import StoreError
from storage.layout import TABLE_NAMES, parquet_tables

__all__ = ["DEFAULT_LIMITS", "META_DIR", "QueryLimits", "lock_down", "parquet_tables", "readable_dirs"]

META_DIR = "_store"  # the store's own metadata folder (store identity marker, schema files)


def _default_memory() -> str:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return "4GB"
    return f"{max(256, total // 2 // 2**20)}MB"


@dataclass(frozen=True)
class QueryLimits:
    """Resource limits of a locked-down connection (DuckDB setting syntax for sizes, e.g. '2GB')."""

    memory_limit: str | None = None  # None: half the machine's memory
    threads: int | None = None  # None: the machine's cores, at most 8
    max_temp_directory_size: str = "20GB"


DEFAULT_LIMITS = QueryLimits()


def readable_dirs(root: str, tables: Iterable[str] | None = None) -> list[str]:
    """What a locked-down connection may read: the Parquet table folders and the metadata folder, both as
    absolute paths and as the root-relative names the views file uses (DuckDB checks the name as written
    when it globs, and the resolved path when it opens a file)."""
    names = [*(tables if tables is not None else parquet_tables()), META_DIR]
    root = root.rstrip("/")
    return [f"{root}/{n}/" for n in names] + [f"{n}/" for n in names]


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _already_locked(con: duckdb.DuckDBPyConnection, root: str) -> bool:
    """True when this database instance is locked down for `root` already (DuckDB shares one instance per
    file in a process: a second connection to a locked views file inherits the lockdown)."""
    row = con.execute("SELECT current_setting('lock_configuration'), current_setting('enable_external_access'), "
                      "current_setting('file_search_path')").fetchone()
    if row is None or not row[0]:
        return False
    if row[1] or row[2] != root:
        raise StoreError(f"the views database is already open in this process with other settings ({row}); "
                         "close the other connection first")
    return True


def lock_down(con: duckdb.DuckDBPyConnection, root: str, limits: QueryLimits = DEFAULT_LIMITS,
              legacy: bool = False, prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> None:
    """Apply the lockdown (see module docstring) to an open connection; cannot be undone.

    `legacy`: a views file of the previous format, whose views read every table's folder (absolute paths).
    `prepare`: called with `con` right before the configuration is locked (on a database instance this
    process locked already, right away: DuckDB still accepts function registrations there)."""
    if _already_locked(con, root):
        if prepare is not None:
            prepare(con)
        return
    threads = limits.threads or min(os.cpu_count() or 1, 8)
    temp = os.path.join(tempfile.gettempdir(), f"pixelrefer-duckdb-{os.getuid() if hasattr(os, 'getuid') else 0}")
    allowed = ", ".join(_sql_str(d) for d in readable_dirs(root, TABLE_NAMES if legacy else None))
    for statement in (
        f"SET file_search_path = {_sql_str(root)}",
        f"SET temp_directory = {_sql_str(temp)}",
        f"SET max_temp_directory_size = {_sql_str(limits.max_temp_directory_size)}",
        f"SET allowed_directories = [{allowed}]",
        "SET enable_external_access = false",
        "SET autoload_known_extensions = false",
        "SET autoinstall_known_extensions = false",
        f"SET memory_limit = {_sql_str(limits.memory_limit or _default_memory())}",
        f"SET threads = {int(threads)}",
    ):
        con.execute(statement)
    if prepare is not None:
        prepare(con)
    con.execute("SET lock_configuration = true")
