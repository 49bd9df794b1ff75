"""Small YAML/JSON files holding a list of entries (prompt, seed and concept files), validated by pydantic.

The text is parsed once: YAML through one `yaml.SafeLoader` pass that yields both the node tree (for
line numbers) and the data; JSON with the standard parser. Every entry is validated by a pydantic
model, and a failure becomes the caller's error type naming the file, where the entry stands
("line 7 (entry 2)" for YAML, "entry 2" for JSON), the field and the reason, as users fixing a file by
hand need.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["Located", "load_entries", "parse_entries", "validation_message"]

M = TypeVar("M", bound=BaseModel)
Located = tuple[str, Any]  # (where the entry stands, the entry as parsed)


def _read(path: str, what: str, error: type[Exception]) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read {what} (not UTF-8 text: {exc.reason})") from exc


def _yaml(text: str, source: str, error: type[Exception]) -> tuple[Any, list[str]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        # An unclosed quote or bracket is noticed at the end of the file: name where it was opened.
        if exc.context_mark is not None and ("end of stream" in str(exc.problem) or "stream end" in str(exc.problem)):
            mark = exc.context_mark
        at = f"line {mark.line + 1}: " if mark is not None else ""
        why = f"{exc.context}: {exc.problem}" if exc.context else str(exc.problem)
        raise error(f"{source}: {at}invalid YAML: {why}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    items = node.value if isinstance(node, yaml.SequenceNode) else []
    return data, [f"line {n.start_mark.line + 1} (entry {i})" for i, n in enumerate(items)]


def parse_entries(text: str, source: str, fmt: str, error: type[Exception], shape: str) -> list[Located]:
    """Parse a non-empty list (fmt 'yaml' | 'json'); `shape` describes an entry in messages."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from None
        where = [f"entry {i}" for i in range(len(data))] if isinstance(data, list) else []
    else:
        data, where = _yaml(text, source, error)
    if not isinstance(data, list) or not data:
        raise error(f"{source}: expected a non-empty list of {shape} entries")
    return [(f"{source}: {where[i] if i < len(where) else f'entry {i}'}", entry) for i, entry in enumerate(data)]


# pydantic error types -> what the user should write instead (field name in front).
_EXPECTED = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "bool_type": "must be true or false",
    "dict_type": "must be a mapping",
}


def validation_message(exc: ValidationError) -> str:
    """One readable clause per pydantic error: field and reason (our validators' messages kept as written)."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        kind, msg = err["type"], str(err["msg"])
        if kind == "missing":
            parts.append(f"missing {field!r}")
        elif kind == "extra_forbidden":
            parts.append(f"unknown field(s) [{field!r}]")
        elif kind in ("value_error", "assertion_error"):
            msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
            parts.append(f"{field}: {msg}" if field else msg)
        elif kind == "model_type" or (kind == "dict_type" and not field):
            parts.append(f"expected a mapping, got {type(err.get('input')).__name__}")
        elif kind in _EXPECTED:
            parts.append(f"{field} {_EXPECTED[kind]}")
        elif kind == "literal_error":
            parts.append(f"{field} {err.get('input')!r} is not allowed: {msg[0].lower() + msg[1:]}")
        else:
            parts.append(f"{field}: {msg[0].lower() + msg[1:]}" if field else msg)
    return "; ".join(parts)


def validate_entries(entries: Sequence[Located], model: type[M], error: type[Exception]) -> list[M]:
    """Each entry through `model`; the first invalid one raises `error` with where and why."""
    out = []
    for at, entry in entries:
        try:
            out.append(model.model_validate(entry))
        except ValidationError as exc:
            raise error(f"{at}: {validation_message(exc)}") from None
    return out


def load_entries(path: str, what: str, model: type[M], error: type[Exception], shape: str) -> list[tuple[str, M]]:
    """Read `path` (.json as JSON, anything else as YAML) and validate every entry: [(where, model)]."""
    text = _read(path, what, error)
    entries = parse_entries(text, path, "json" if path.lower().endswith(".json") else "yaml", error, shape)
    return list(zip([at for at, _ in entries], validate_entries(entries, model, error), strict=True))
