"""Read-only SQL over the views database, and result formatting (table, csv, json).

``run_query`` opens the views file read-only and refuses, before running anything, every statement
that is not a read: DuckDB parses the text (``extract_statements``) and only SELECT-type statements
(SELECT, WITH, VALUES, FROM-first, DESCRIBE, SHOW, SUMMARIZE) and EXPLAIN [ANALYZE] of those pass.
Everything else (CREATE, INSERT, UPDATE, DELETE, COPY, ATTACH, DETACH, INSTALL/LOAD, SET, PRAGMA,
EXPORT, CALL, ...) raises ReadOnlyQueryError naming the statement type; if any statement of a
multi-statement text is refused, none runs.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import os
import re
from collections.abc import Sequence
from typing import Any

import duckdb

from storage.errors import QueryError, ReadOnlyQueryError, StoreError

__all__ = ["run_query", "check_read_only", "format_table", "format_csv", "format_json", "format_result"]

_ALLOWED = {duckdb.StatementType.SELECT}
_EXPLAIN = re.compile(r"^\s*explain\s+(analy[sz]e\s+)?", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"^(\s*(--[^\n]*(\n|$)|/\*.*?\*/))*", re.DOTALL)
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def _statements(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    try:
        return list(con.extract_statements(sql))
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from exc


def _check_one(con: duckdb.DuckDBPyConnection, statement) -> None:
    kind = statement.type
    if kind in _ALLOWED:
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


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    """Parse `sql`; return its statements if all are reads, else raise ReadOnlyQueryError.

    Raises QueryError for text DuckDB cannot parse or that holds no statement.
    """
    statements = _statements(con, sql)
    if not statements:
        raise QueryError("no SQL statement given")
    for statement in statements:
        _check_one(con, statement)
    return statements


def run_query(db_path: str | os.PathLike, sql: str) -> tuple[list[str], list[tuple]]:
    """Run read-only `sql` on the views database; returns (column names, rows) of the last statement.

    Raises StoreError when `db_path` does not exist, ReadOnlyQueryError for a write, QueryError
    (with DuckDB's message) for SQL that does not parse or run.
    """
    db_path = os.fspath(db_path)
    if not os.path.isfile(db_path):
        raise StoreError(
            f"no views database at {db_path}: open the store and refresh its views "
            "(Store.refresh_views(), or `pixelrefer query --refresh`)"
        )
    try:
        con = duckdb.connect(db_path, read_only=True, config=_CONFIG)
    except duckdb.Error as exc:
        raise StoreError(f"cannot open views database {db_path}: {exc}") from exc
    try:
        statements = check_read_only(con, sql)
        columns: list[str] = []
        rows: list[tuple] = []
        for statement in statements:
            try:
                cur = con.execute(statement.query)
                columns = [d[0] for d in cur.description or []]
                rows = cur.fetchall() if cur.description else []
            except duckdb.Error as exc:
                raise QueryError(str(exc)) from exc
        return columns, rows
    finally:
        con.close()


# -- formatting ---------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple | dict):
        return json.dumps(_jsonable(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 40) -> str:
    """Aligned text table; numbers right-aligned. Cells longer than `max_width` are shortened with '...':
    at the end for text, in the middle for paths and URIs, whose distinctive part is the file name."""
    def clip(text: str) -> str:
        text = text.replace("\n", " ")
        if len(text) <= max_width:
            return text
        if "/" in text and " " not in text:
            head = (max_width - 3) // 3
            return text[:head] + "..." + text[len(text) - (max_width - 3 - head) :]
        return text[: max_width - 3] + "..."

    cells = [[clip(_cell(v)) for v in row] for row in rows]
    header = [clip(c) for c in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    def is_num(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    numeric = [
        any(is_num(r[i]) for r in rows) and all(is_num(r[i]) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return " | ".join(parts).rstrip()

    out = [line(header), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def format_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """RFC 4180 CSV with a header; lists as JSON text, NULL as an empty field."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else json.dumps(_jsonable(v)) if isinstance(v, list | dict)
                         else _jsonable(v) for v in row])
    return buf.getvalue()


def format_json(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A JSON array of objects, one per row (timestamps ISO 8601)."""
    return json.dumps([{c: _jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows], indent=1)


def format_result(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    formatters = {"table": format_table, "csv": format_csv, "json": format_json}
    if fmt not in formatters:
        raise StoreError(f"unknown output format {fmt!r}; choose one of {', '.join(formatters)}")
    return formatters[fmt](columns, rows)
