"""Small YAML/JSON files holding a list of entries (prompt files, seed files), read with positions.

Every entry comes back with where it stands ("line 7 (entry 2)" for YAML, "entry 2" for JSON) so that
validation errors can name the line, as users fixing a file by hand need.
"""

from __future__ import annotations

import json

import yaml

__all__ = ["parse_entries", "read_entry_file"]


def read_entry_file(path: str, what: str, error: type[Exception], shape: str) -> list[tuple[str, object]]:
    """Read `path` (.json as JSON, anything else as YAML) -> [(where, entry)]; raises `error`."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from exc
    return parse_entries(text, path, "json" if path.lower().endswith(".json") else "yaml", error, shape)


def parse_entries(text: str, source: str, fmt: str, error: type[Exception], shape: str) -> list[tuple[str, object]]:
    """Parse a non-empty list; `shape` describes an entry in messages (e.g. "{id, task, text}")."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from exc
        where = [f"entry {i}" for i in range(len(data))] if isinstance(data, list) else []
    else:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f"line {mark.line + 1}: " if mark is not None else ""
            raise error(f"{source}: {at}invalid YAML: {getattr(exc, 'problem', None) or exc}") from exc
        items = node.value if isinstance(node, yaml.SequenceNode) else []
        where = [f"line {n.start_mark.line + 1} (entry {i})" for i, n in enumerate(items)]
    if not isinstance(data, list) or not data:
        raise error(f"{source}: expected a non-empty list of {shape} entries")
    return [(f"{source}: {where[i] if i < len(where) else f'entry {i}'}", entry) for i, entry in enumerate(data)]
