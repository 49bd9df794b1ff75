"""The DDL of the views file: render ``sql/views/*.sql`` for one store.

Each ``sql/views/NN_<name>.sql`` file is plain SQL run in file-name order at every refresh (see
storage.refresh), with placeholders filled here (plain text replacement, so braces elsewhere are safe):

- ``{source:<table>}``: where a base table's rows come from. A materialised (small) table: its native
  table ``_pixelrefer.<table>`` inside the views file. A Parquet table: ``read_parquet`` of
  ``<table>/video_id=*/*.parquet`` (hive-partitioned by video_id), a path RELATIVE to the store root,
  guarded by ``_pixelrefer.store_check()``; while the table has no files, the zero-row native table
  ``_pixelrefer.empty_<table>`` (so every view has the right columns from the first refresh on).
- ``{video_source:<table>:<expr>}``: the same table read from ONE video's folder only,
  ``<table>/video_id=<expr>/*.parquet``, unioned by name with ``_pixelrefer.empty_<table>`` so that a
  video without files gives zero rows of the right columns; `expr` is a macro parameter. This is what
  the per-video table macros use: they never list nor open another video's files.
- ``{stage:<table>}``: the catalog stage that writes `table` (a SQL string literal).
- ``{vectors:embedder}`` / ``{vectors:dim}``: the store's current embedder (a SQL literal, or NULL) and
  its vector dimension, computed from the data at each refresh (storage.vectors).

No absolute path is ever written into the views file of a local store: a plain DuckDB client resolves
the relative names against ``file_search_path`` (or its working directory), and
``_pixelrefer.store_check()`` fails every query over Parquet with a clear message when they resolve to a
folder that is not this store. A store on object storage (``s3://bucket/prefix``) is named by its URL
instead (`base`): DuckDB does not resolve relative names against a remote ``file_search_path``, and a
bucket URL is the same from every machine. Globs name only ``*.parquet`` files; writers' temporaries end in
``.partial`` and are never read.

Files are written with the exact schema of their version; when some files of a Parquet table have an
older schema version (storage.schemas.SCHEMA_HISTORY), that table is read with ``union_by_name`` (the
columns added since are null) until they are rewritten. Otherwise no view pays for ``union_by_name``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from storage.errors import StoreError
from storage.layout import MATERIALIZED_TABLES, SCHEMA_VERSIONS, TABLE_NAMES, TABLE_STAGE

__all__ = [
    "INTERNAL_SCHEMA",
    "VIEWS_DIR",
    "macro_names",
    "render_view_sql",
    "view_files",
    "view_names",
    "views_digest",
]

VIEWS_DIR = Path(__file__).resolve().parents[1] / "sql" / "views"
INTERNAL_SCHEMA = "_pixelrefer"
_CREATE = re.compile(r"CREATE\s+OR\s+REPLACE\s+(VIEW|MACRO)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_files() -> list[Path]:
    files = sorted(VIEWS_DIR.glob("*.sql"))
    if not files:
        raise StoreError(f"no view definitions found in {VIEWS_DIR}")
    return files


def _created(kind: str) -> list[str]:
    return [name for path in view_files() for k, name in _CREATE.findall(path.read_text()) if k.upper() == kind]


def view_names() -> list[str]:
    """Names of the views, in creation order."""
    return _created("VIEW")


def macro_names() -> list[str]:
    """Names of the table macros (e.g. video_frames, object_timeline)."""
    return _created("MACRO")


def views_digest() -> str:
    """Changes whenever the view SQL or a table's schema version changes (the views file records it)."""
    h = hashlib.sha256()
    for path in view_files():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    h.update(repr(sorted(SCHEMA_VERSIONS.items())).encode())
    h.update(repr(MATERIALIZED_TABLES).encode())
    return h.hexdigest()[:16]


def _read_parquet(paths: str, union: bool, hive: bool) -> str:
    options = ["hive_partitioning = true", "hive_types = {'video_id': 'VARCHAR'}"] if hive else \
        ["hive_partitioning = false", "allow_empty = true"]
    if union:
        options.append("union_by_name = true")
    return f"read_parquet({paths}, {', '.join(options)})"


def table_source(table: str, has_files: bool, union: bool = False, base: str = "") -> str:
    """The FROM-clause relation of base table `table` (see module docstring; `base`: '' for a local store,
    the root URL with a trailing '/' for a remote one)."""
    if table in MATERIALIZED_TABLES:
        return f"{INTERNAL_SCHEMA}.{table}"
    if has_files:
        scan = _read_parquet(_sql_str(f"{base}{table}/video_id=*/*.parquet"), union, hive=True)
    else:
        return f"{INTERNAL_SCHEMA}.empty_{table}"
    return f"(SELECT * FROM {scan} WHERE {INTERNAL_SCHEMA}.store_check())"


def video_source(table: str, expr: str, union: bool = False, base: str = "") -> str:
    """`table` read from one video's folder (`expr`: a SQL expression, e.g. a macro parameter)."""
    path = f"{_sql_str(base + table + '/video_id=')} || {expr} || '/*.parquet'"
    return (f"(SELECT * FROM {INTERNAL_SCHEMA}.empty_{table} UNION ALL BY NAME "
            f"SELECT * FROM {_read_parquet(path, union, hive=False)} WHERE {INTERNAL_SCHEMA}.store_check())")


_VIDEO_SOURCE = re.compile(r"\{video_source:([a-z_]+):([A-Za-z_][A-Za-z0-9_]*)\}")


def render_view_sql(tables_with_files: Iterable[str], union_tables: Iterable[str] = (),
                    values: Mapping[str, str] | None = None, base: str = "") -> list[str]:
    """The DDL of every file with placeholders filled, one string per file, in order.

    `tables_with_files`: Parquet tables that have at least one file; `union_tables`: those with files of
    an older schema version (read with union_by_name); `values`: SQL text of the data-dependent
    placeholders (storage.vectors.vector_view_values; default: a store without vectors); `base`: see
    `table_source`.
    """
    with_files, union = set(tables_with_files), set(union_tables)
    values = dict(values or {"vectors:embedder": "NULL", "vectors:dim": "1"})
    out = []
    for path in view_files():
        sql = path.read_text()
        for table in TABLE_NAMES:
            sql = sql.replace("{source:" + table + "}", table_source(table, table in with_files, table in union, base))
            if table in TABLE_STAGE:
                sql = sql.replace("{stage:" + table + "}", _sql_str(TABLE_STAGE[table]))
        sql = _VIDEO_SOURCE.sub(lambda m: video_source(m.group(1), m.group(2), m.group(1) in union, base), sql)
        for name, text in values.items():
            sql = sql.replace("{" + name + "}", text)
        if "{source:" in sql or "{video_source:" in sql or "{stage:" in sql or "{vectors:" in sql:
            raise StoreError(f"view definition {path.name} has an unknown placeholder")
        out.append(sql)
    return out
