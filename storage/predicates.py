"""Selection predicates (`describe --where`, `Store.read_table(filter_sql=...)`): one boolean expression.

`validate_predicate(text)` accepts exactly one expression over the columns of the named tables (by default
`objects` and `videos`) and refuses everything else before anything runs, using DuckDB's own tokenizer and
parser rather than patterns:

- comments (``--``, ``/* */``) and ``;`` are refused (they could swallow or end the surrounding query);
- the text is parsed inside ``SELECT 1 FROM objects, videos WHERE (<text>)`` and the parse tree must be
  that query and nothing more: no set operation (``UNION ...``), no GROUP BY / HAVING / ORDER BY / LIMIT
  smuggled in after a closing parenthesis, no second statement;
- the expression itself: no subqueries (hence no table functions such as ``read_text``), no window
  functions, no ``*``, no parameters; every column it names is a column of the allowed tables.

`select_objects(store, where)` runs the selection of the latest tracking's objects on a locked-down
connection (storage.lockdown).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import duckdb

from storage.errors import PredicateError
from storage.schemas import SCHEMAS

if TYPE_CHECKING:
    import pyarrow as pa

    from storage.store import Store

__all__ = ["DEFAULT_TABLES", "select_objects", "validate_predicate"]

DEFAULT_TABLES: dict[str, list[str]] = {"objects": SCHEMAS["objects"].names, "videos": SCHEMAS["videos"].names}
_MAX_LEN = 10_000
_REFUSED_CLASSES = {"SUBQUERY": "subqueries", "WINDOW": "window functions", "STAR": "'*'",
                    "PARAMETER": "parameters", "DEFAULT": "DEFAULT", "POSITIONAL_REFERENCE": "positional references"}
_VOLATILE_KEYS = {"query_location", "query_location_length"}


def _serialize(sql: str) -> dict[str, Any]:
    con = duckdb.connect()
    try:
        text = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    finally:
        con.close()
    assert text is not None
    return dict(json.loads(text[0]))


def _strip(node: Any) -> Any:
    """The tree without source positions (two parses of different text compare equal on structure)."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in _VOLATILE_KEYS}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _check_tokens(text: str, predicate: str, what: str) -> None:
    try:
        tokens = duckdb.tokenize(text)
    except Exception as exc:  # noqa: BLE001 - any tokenizer failure is a bad predicate
        raise PredicateError(predicate, f"cannot be read: {exc}", what) from None
    for i, (pos, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(text)
        piece = text[pos:end].strip()
        if kind == duckdb.token_type.comment:
            raise PredicateError(predicate, "comments ('--', '/* */') are not allowed", what)
        if kind == duckdb.token_type.operator and ";" in piece:
            raise PredicateError(predicate, "one expression only: ';' is not allowed", what)


def _walk(node: Any, tables: Mapping[str, Sequence[str]], lambda_names: frozenset[str], predicate: str,
          what: str) -> None:
    if isinstance(node, list):
        for child in node:
            _walk(child, tables, lambda_names, predicate, what)
        return
    if not isinstance(node, dict):
        return
    if "select_list" in node or "from_table" in node or node.get("type") in ("SELECT_NODE", "SET_OPERATION_NODE"):
        raise PredicateError(predicate, "subqueries are not allowed", what)
    cls = node.get("class")
    if cls in _REFUSED_CLASSES:
        raise PredicateError(predicate, f"{_REFUSED_CLASSES[cls]} are not allowed", what)
    if cls == "LAMBDA":
        names = set(lambda_names)
        for ref in _column_refs(node.get("lhs")):
            names.add(ref[-1].lower())
        _walk(node.get("expr"), tables, frozenset(names), predicate, what)
        return
    if cls == "COLUMN_REF":
        _check_column(node.get("column_names") or [], tables, lambda_names, predicate, what)
        return
    for value in node.values():
        if isinstance(value, dict | list):
            _walk(value, tables, lambda_names, predicate, what)


def _column_refs(node: Any) -> list[list[str]]:
    if isinstance(node, dict):
        if node.get("class") == "COLUMN_REF":
            return [list(node.get("column_names") or [])]
        return [r for v in node.values() for r in _column_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _column_refs(v)]
    return []


def _check_column(names: list[str], tables: Mapping[str, Sequence[str]], lambda_names: frozenset[str],
                  predicate: str, what: str) -> None:
    lowered = {t.lower(): {c.lower() for c in cols} for t, cols in tables.items()}
    if len(names) == 1:
        name = names[0].lower()
        if name in lambda_names or any(name in cols for cols in lowered.values()):
            return
        raise PredicateError(predicate, f"unknown column {names[0]!r} (columns of {', '.join(tables)})", what)
    if len(names) == 2 and names[0].lower() in lowered:
        if names[1].lower() in lowered[names[0].lower()]:
            return
        raise PredicateError(predicate, f"{names[0]} has no column {names[1]!r}", what)
    raise PredicateError(predicate, f"{'.'.join(names)!r} is not a column of {', '.join(tables)}", what)


def validate_predicate(text: str, tables: Mapping[str, Sequence[str]] | None = None, *, what: str = "--where") -> str:
    """Check `text` (see module docstring) and return it ready to embed after WHERE (parenthesised).

    `tables`: {table or alias: its columns} the expression may use (default: objects and videos).
    Raises PredicateError naming the reason.
    """
    tables = dict(tables or DEFAULT_TABLES)
    if not isinstance(text, str) or not text.strip():
        raise PredicateError(str(text), "it is empty", what)
    if len(text) > _MAX_LEN:
        raise PredicateError(text[:60] + "...", f"longer than {_MAX_LEN} characters", what)
    _check_tokens(text, text, what)
    names = ", ".join(f'"{t}"' for t in tables)
    tree = _serialize(f"SELECT 1 FROM {names} WHERE ({text})")
    if tree.get("error"):
        raise PredicateError(text, str(tree.get("error_message", "it does not parse")), what)
    baseline = _serialize(f"SELECT 1 FROM {names} WHERE (TRUE)")
    statements, expected = tree.get("statements") or [], baseline["statements"]
    if len(statements) != 1:
        raise PredicateError(text, "one expression only", what)
    node, want = dict(statements[0]["node"]), dict(expected[0]["node"])
    if node.get("type") != "SELECT_NODE":
        raise PredicateError(text, "set operations (UNION, EXCEPT, INTERSECT) are not allowed", what)
    where = node.pop("where_clause", None)
    want.pop("where_clause", None)
    if where is None or _strip(node) != _strip(want):
        raise PredicateError(text, "only one boolean expression is allowed (nothing after it: no GROUP BY, "
                             "ORDER BY, LIMIT, ...)", what)
    _walk(where, tables, frozenset(), text, what)
    return f"({text.strip()})"


_SELECT = """
SELECT objects.video_id, objects.track_key, objects.object_id, videos.uri
FROM latest_objects AS objects JOIN videos AS videos ON objects.video_id = videos.video_id
{where}
ORDER BY objects.video_id, objects.object_id
"""


def select_objects(store: Store, where: str | None) -> pa.Table:
    """The latest tracking's objects (with their video's uri) matching `where`, a predicate over the
    columns of `objects` and `videos` (None: all): columns video_id, track_key, object_id, uri, sorted.

    The predicate is checked by `validate_predicate` before anything runs and the query runs on a
    locked-down connection; raises PredicateError for a bad predicate.
    """
    pred = validate_predicate(where) if where is not None else None
    con = store.connect()
    try:
        if pred is not None:
            probe = (f"SELECT {pred} AS p FROM latest_objects AS objects JOIN videos AS videos "
                     "ON objects.video_id = videos.video_id LIMIT 0")
            try:
                kind = con.execute(f"DESCRIBE {probe}").fetchall()[0][1]
            except duckdb.Error as exc:
                raise PredicateError(where or "", str(exc).splitlines()[0]) from None
            if kind != "BOOLEAN":
                raise PredicateError(where or "", f"it is not a boolean expression (its type is {kind})")
        sql = _SELECT.format(where=f"WHERE {pred}" if pred else "")
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise PredicateError(where or "", str(exc).splitlines()[0]) from None
    finally:
        con.close()
