"""Query results as text: an aligned table, CSV or JSON; whole (`format_*`) or streamed (`write_result`).

`write_result` writes batches as they come (bounded memory): CSV and JSON stream every row; the table
format needs the widths of its rows, so it shows at most `limit` rows and says when rows were cut.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from storage.errors import StoreError

__all__ = ["EXPORT_FORMATS", "FORMATS", "format_csv", "format_json", "format_result", "format_table", "jsonable", "write_result"]

FORMATS = ("table", "csv", "json")  # query output
EXPORT_FORMATS = ("csv", "parquet", "coco-json", "youtube-vis", "mot")  # storage.export (here so the CLI needs no pyarrow to list them)


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (timestamps ISO 8601, decimals as floats, bytes as text)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


_jsonable = jsonable  # the former private name (storage.export used it)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple | dict):
        return json.dumps(jsonable(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 40,
                 more: bool = False) -> str:
    """Aligned text table; numbers right-aligned. Cells longer than `max_width` are shortened with '...':
    at the end for text, in the middle for paths and URIs, whose distinctive part is the file name.
    `more`: the rows are the first of a longer result (said in the last line)."""
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
    n = len(rows)
    if more:
        out.append(f"(first {n} row{'s' if n != 1 else ''} shown; the result has more: raise --limit, "
                   "or use --limit 0 with --format csv/json for all)")
    else:
        out.append(f"({n} row{'s' if n != 1 else ''})")
    return "\n".join(out)


def _csv_value(v: Any) -> Any:
    return "" if v is None else json.dumps(jsonable(v)) if isinstance(v, list | dict) else jsonable(v)


def _csv_row(row: Sequence[Any]) -> list[Any]:
    return [_csv_value(v) for v in row]


_PLAIN = (str, int, float, bool)


def _csv_rows(batch: Sequence[Sequence[Any]]) -> Iterable[Sequence[Any]]:
    """`batch` ready for csv.writer: only the columns holding lists, timestamps, ... are converted (plain
    values go through the C writer untouched; this is what makes a million-row export take seconds)."""
    if not batch:
        return batch
    def first_value(i: int) -> Any:  # a column has one type: its first non-null value tells it
        return next((r[i] for r in batch if r[i] is not None), None)

    special = [i for i in range(len(batch[0])) if not isinstance(first_value(i), _PLAIN + (type(None),))]
    if not special:
        return batch

    def convert(row: Sequence[Any]) -> list[Any]:
        out = list(row)
        for i in special:
            out[i] = _csv_value(out[i])
        return out

    return map(convert, batch)


def format_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """RFC 4180 CSV with a header; lists as JSON text, NULL as an empty field."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(_csv_row(row))
    return buf.getvalue()


def format_json(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A JSON array of objects, one per row (timestamps ISO 8601)."""
    return json.dumps([{c: jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows], indent=1)


def format_result(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    formatters = {"table": format_table, "csv": format_csv, "json": format_json}
    if fmt not in formatters:
        raise StoreError(f"unknown output format {fmt!r}; choose one of {', '.join(formatters)}")
    return formatters[fmt](columns, rows)


def write_result(out: TextIO, columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]], fmt: str,
                 limit: int | None = None) -> tuple[int, bool]:
    """Write a result to `out` as it is fetched; returns (rows written, whether rows were cut by `limit`).

    `limit` None or 0: every row (the table format needs one: callers give it a default).
    """
    if fmt not in FORMATS:
        raise StoreError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
    limit = limit or None
    kept: list[Sequence[Any]] = []
    n, cut = 0, False
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(columns)
    if fmt == "json":
        out.write("[")
    for batch in batches:
        if limit is not None and n + len(batch) > limit:
            batch, cut = batch[: limit - n], True
        if fmt == "table":
            kept.extend(batch)
        elif writer is not None:
            writer.writerows(_csv_rows(batch))
        else:
            for row in batch:
                out.write(("\n" if n == 0 else ",\n")
                          + json.dumps({c: jsonable(v) for c, v in zip(columns, row, strict=True)}))
                n += 1
            n -= len(batch)
        n += len(batch)
        if cut:
            break
    if fmt == "table":
        out.write(format_table(columns, kept, more=cut) + "\n")
    elif fmt == "json":
        out.write("\n]\n" if n else "]\n")
    return n, cut
