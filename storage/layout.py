"""Which tables exist, who writes them, how they are stored: plain constants, no pyarrow.

Light on purpose (the query command imports it): the Arrow schemas themselves are in storage.schemas,
which checks that both agree.
"""

from __future__ import annotations

__all__ = [
    "COMPRESSION",
    "MATERIALIZED_TABLES",
    "SCHEMA_VERSIONS",
    "STAGE_TABLES",
    "TABLE_NAMES",
    "TABLE_STAGE",
    "parquet_tables",
]

# Every table of record, in the order the docs list them.
TABLE_NAMES: tuple[str, ...] = ("videos", "objects", "object_frames", "descriptions", "object_thumbnails",
                               "description_vectors")

# Current version of each table's schema. Bump it when a table changes, and add the previous schema to
# storage.schemas.SCHEMA_HISTORY (only append nullable columns: older files then still read, new columns null).
SCHEMA_VERSIONS: dict[str, int] = {"videos": 2, "objects": 2, "object_frames": 1, "descriptions": 1,
                                   "object_thumbnails": 1, "description_vectors": 1}

# Which tables a catalog stage's unit writes (unit key = the stage's unit_key), first = primary table
# (the one `Catalog.mark_done(..., rows=<int>)` counts). Add a stage here when a new table gets one.
STAGE_TABLES: dict[str, tuple[str, ...]] = {
    "ingest": ("videos",),
    "track": ("objects", "object_frames"),
    "describe": ("descriptions",),
    "thumbnails": ("object_thumbnails",),
    "index": ("description_vectors",),
}
TABLE_STAGE: dict[str, str] = {t: stage for stage, tables in STAGE_TABLES.items() for t in tables}

# Small tables, copied into the views file as native DuckDB tables at every refresh (fast to query, no
# file per unit to open). Every other table stays Parquet, read at query time. Extend this list when a
# new table is small (one row per object or per description).
# `object_thumbnails` is one row per object too, but of JPEG bytes (~20 KB a row): copying it into the
# views file would make every refresh (which copies the views file) cost the thumbnails' size; it stays
# Parquet, read at query time (measured: benchmarks/bench_render.py --materialize-thumbnails, docs/report.md).
# description_vectors is materialised because search ranks them all by brute force: 1M 256-d vectors,
# median top-20 on this shared 2-core machine at load ~5 (benchmarks/bench_search.py, docs/search.md):
# 0.4 s for search() on the native table, 2.4 s for the same scan over the Parquet units.
MATERIALIZED_TABLES: list[str] = ["videos", "objects", "descriptions", "description_vectors"]

# Parquet compression per table (default snappy); see docs/store.md for the measurement behind it.
COMPRESSION: dict[str, str] = {"object_frames": "zstd"}


def parquet_tables() -> list[str]:
    """Tables read from Parquet at query time (the ones not materialised into the views file)."""
    return [t for t in TABLE_NAMES if t not in MATERIALIZED_TABLES]
