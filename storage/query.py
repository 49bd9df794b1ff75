"""Read-only SQL over the views file: statement check, locked-down connection, time limit, streaming.

``check_read_only`` refuses, before anything runs, every statement that is not a read: DuckDB parses the
text (``extract_statements``) and only SELECT-type statements (SELECT, WITH, VALUES, FROM-first, DESCRIBE,
SHOW, SUMMARIZE), EXPLAIN [ANALYZE] of those, and ``SET VARIABLE`` / ``RESET VARIABLE`` (session
variables, e.g. a video id for the table macros) pass. Everything else (CREATE, INSERT, UPDATE, DELETE,
COPY, ATTACH, DETACH, INSTALL/LOAD, SET of a setting, PRAGMA, EXPORT, CALL, ...) raises
ReadOnlyQueryError naming the statement type; if any statement of a multi-statement text is refused,
none runs.

Queries run on a connection locked down by storage.lockdown (nothing outside the store's data files can
be read), under a time limit (``timeout_s``; DuckDB's ``interrupt`` on the deadline) and stop at once on
Ctrl-C: QueryTimeoutError / QueryInterrupted. ``stream_query`` yields the result in batches (bounded
memory whatever the result size); ``run_query`` fetches it whole (for small results).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb

from storage.errors import QueryError, QueryInterrupted, QueryTimeoutError, ReadOnlyQueryError, StoreError
from storage.formatting import format_csv, format_json, format_result, format_table, write_result
from storage.lockdown import DEFAULT_LIMITS, QueryLimits, lock_down

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "QueryResult",
    "check_read_only",
    "format_csv",
    "format_json",
    "format_result",
    "format_table",
    "run_query",
    "stream_query",
    "write_result",
]

DEFAULT_TIMEOUT_S = 300.0
_ALLOWED = {duckdb.StatementType.SELECT}
_EXPLAIN = re.compile(r"^\s*explain\s+(analy[sz]e\s+)?", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"^(\s*(--[^\n]*(\n|$)|/\*.*?\*/))*", re.DOTALL)
_VARIABLE = re.compile(r"^(SET|RESET)\s+VARIABLE\s", re.IGNORECASE)


def _statements(con: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
    try:
        return list(con.extract_statements(sql))
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from exc


def _check_one(con: duckdb.DuckDBPyConnection, statement: Any) -> None:
    kind = statement.type
    if kind in _ALLOWED:
        return
    if kind == duckdb.StatementType.SET and _VARIABLE.match(_LEADING_COMMENTS.sub("", statement.query)):
        return
    if kind == duckdb.StatementType.EXPLAIN:
        text = _LEADING_COMMENTS.sub("", statement.query)
        inner = _EXPLAIN.sub("", text, count=1)
        if inner == text:  # pragma: no cover - EXPLAIN always starts with the keyword
            raise ReadOnlyQueryError("EXPLAIN", statement.query)
        for sub in _statements(con, inner):
            _check_one(con, sub)
        return
    raise ReadOnlyQueryError(kind.name, statement.query)


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
    """Parse `sql`; return its statements if all are reads, else raise ReadOnlyQueryError.

    Raises QueryError for text DuckDB cannot parse or that holds no statement.
    """
    statements = _statements(con, sql)
    if not statements:
        raise QueryError("no SQL statement given")
    for statement in statements:
        _check_one(con, statement)
    return statements


class _Watch:
    """Interrupts `con` at the deadline; tells a timeout from a Ctrl-C afterwards."""

    def __init__(self, con: duckdb.DuckDBPyConnection, timeout_s: float | None):
        self.con = con
        self.timeout_s = timeout_s
        self.timed_out = False
        self._timer: threading.Timer | None = None
        if timeout_s is not None and timeout_s > 0:
            self._timer = threading.Timer(timeout_s, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.timed_out = True
        self.con.interrupt()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def error(self, exc: BaseException) -> QueryError:
        """The typed error for an exception raised while the query ran or was fetched."""
        if self.timed_out and self.timeout_s is not None:
            return QueryTimeoutError(self.timeout_s)
        interrupted = isinstance(exc, KeyboardInterrupt | duckdb.InterruptException) or (
            isinstance(exc, RuntimeError) and "interrupt" in str(exc).lower())
        return QueryInterrupted() if interrupted else QueryError(str(exc))


@dataclass
class QueryResult:
    """The result of the last statement of a query, fetched in batches (see `stream_query`)."""

    columns: list[str]
    _cursor: Any = field(repr=False, default=None)
    _watch: _Watch | None = field(repr=False, default=None)

    def batches(self, size: int = 10_000) -> Iterator[list[tuple[Any, ...]]]:
        """Rows in lists of at most `size`; raises QueryTimeoutError / QueryInterrupted / QueryError."""
        if self._cursor is None:
            return
        while True:
            try:
                rows = self._cursor.fetchmany(size)
            except (duckdb.Error, RuntimeError, KeyboardInterrupt) as exc:
                if isinstance(exc, KeyboardInterrupt) and self._watch is not None:
                    self._watch.con.interrupt()
                raise (self._watch.error(exc) if self._watch else QueryError(str(exc))) from None
            if not rows:
                return
            yield rows

    def rows(self, limit: int | None = None) -> list[tuple[Any, ...]]:
        """All rows, or the first `limit`."""
        out: list[tuple[Any, ...]] = []
        for batch in self.batches(10_000 if limit is None else min(10_000, max(limit, 1))):
            out.extend(batch)
            if limit is not None and len(out) >= limit:
                return out[:limit]
        return out


def _is_current_format(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        con.execute("SELECT 1 FROM _pixelrefer.info LIMIT 1").fetchall()
    except duckdb.CatalogException:
        return False
    return True


Prepare = Callable[[duckdb.DuckDBPyConnection], None]


def open_views(db_path: str | os.PathLike[str], root: str | None = None,
               limits: QueryLimits = DEFAULT_LIMITS, prepare: Prepare | None = None,
               fs: Any = None) -> duckdb.DuckDBPyConnection:
    """The views file opened read-only and locked down (storage.lockdown); `root` defaults to its folder.
    `prepare(con)` runs before the configuration is locked (e.g. to register scalar functions).

    A remote `root` (an fsspec URL, storage.remote) is read through its fsspec filesystem (`fs`, made
    from the URL when not given), registered on the connection before the lockdown: the lockdown then
    allows that store's folders and nothing else, there as on a local disk.

    A views file of the previous format (absolute paths, no native tables) is read with every table
    folder of its store allowed, until the next refresh rebuilds it."""
    from storage.remote import is_url, register_filesystem, root_filesystem

    db_path = os.fspath(db_path)
    remote = root is not None and is_url(root)
    root = root.rstrip("/") if remote and root else os.path.abspath(root or os.path.dirname(os.path.abspath(db_path)))
    if not os.path.isfile(db_path):
        raise StoreError(
            f"no views database at {db_path}: open the store and refresh its views "
            "(Store.refresh_views(), or `pixelrefer query --refresh`)"
        )
    try:
        con = duckdb.connect(db_path, read_only=True)
    except duckdb.Error as exc:
        raise StoreError(f"cannot open views database {db_path}: {exc}") from exc
    try:
        if remote:
            register_filesystem(con, fs if fs is not None else root_filesystem(root)[0])
        legacy = not _is_current_format(con)
        lock_down(con, root, limits, legacy=legacy, prepare=prepare)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def stream_query(
    db_path: str | os.PathLike[str],
    sql: str,
    *,
    root: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    limits: QueryLimits = DEFAULT_LIMITS,
    prepare: Prepare | None = None,
) -> Iterator[QueryResult]:
    """Run read-only `sql` on the views file; yields the last statement's QueryResult (fetch it inside the
    with-block). The time limit covers running and fetching. `prepare`: see `open_views`. Raises
    StoreError (no views file), ReadOnlyQueryError, QueryError (DuckDB's message), QueryTimeoutError,
    QueryInterrupted."""
    con = open_views(db_path, root, limits, prepare)
    watch = _Watch(con, timeout_s)
    try:
        statements = check_read_only(con, sql)
        cursor = None
        for statement in statements:
            try:
                cursor = con.execute(statement.query)
            except (duckdb.Error, RuntimeError, KeyboardInterrupt) as exc:
                raise watch.error(exc) from None
        columns = [d[0] for d in (cursor.description if cursor is not None and cursor.description else [])]
        yield QueryResult(columns, cursor if columns else None, watch)
    finally:
        watch.cancel()
        con.close()


def run_query(
    db_path: str | os.PathLike[str],
    sql: str,
    *,
    root: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    limits: QueryLimits = DEFAULT_LIMITS,
    max_rows: int | None = None,
    prepare: Prepare | None = None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run read-only `sql` on the views file; returns (column names, rows) of the last statement (the
    first `max_rows` rows, or all). Same errors as `stream_query`."""
    with stream_query(db_path, sql, root=root, timeout_s=timeout_s, limits=limits, prepare=prepare) as result:
        return result.columns, result.rows(max_rows)
