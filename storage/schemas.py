"""Explicit pyarrow schemas of the tables of record, their versions, and validating row -> Table builders.

Conventions (they hold for every table and every view built on them):

- ``video_id``: sha256 hex of the video bytes. Every table is hive-partitioned by it on disk
  (``<root>/<table>/video_id=<id>/<unit_key>.parquet``) and every file also carries it as a column.
- Frames: ``frame_idx``, ``first_frame``, ``last_frame`` are 0-based indices into the decoded video
  (int64). Times ``t``, ``t_start``, ``t_end``, ``duration_s`` are float64 seconds from the start of
  the video.
- Boxes ``x0, y0, x1, y1`` (float32) are pixel coordinates in the full-resolution frame, origin at
  the top-left corner, ``x1``/``y1`` exclusive (a 1-pixel object at column 3 has x0=3, x1=4).
- ``area`` / ``max_area`` are mask pixel counts; ``mean_area_frac`` is the mean of area / (w*h).
- ``mask_rle`` is a COCO *compressed* RLE counts string (``pycocotools.mask.encode(...)["counts"]``
  decoded as ASCII) for a ``mask_h`` x ``mask_w`` mask in column-major (Fortran) order, as COCO does.
- ``direction_deg``: mean direction of motion in image coordinates, degrees in [0, 360): 0 = moving
  right (+x), 90 = moving up (-y), 180 = moving left, 270 = moving down. ``mean_speed_px_s`` in
  pixels per second.
- ``probed_at``, ``tracked_at``, ``created_at``: UTC timestamps (microseconds).
- ``videos.decoded_frames`` / ``partial_reason`` (schema v2): how many frames really decode and, for a
  video whose decoding stops early, why (null: complete, or not measured by an older writer).
- ``objects.label`` / ``label_score`` (schema v2): the concept an object was found by (SAM 3 named
  concepts), null for automatically discovered objects.
- ``object_thumbnails``: one row per object of a tracking, its best frame's crop (box + context, mask
  outline in the object's colour) and the whole frame at reduced size, both JPEG bytes, with their sizes.
- ``description_vectors.vector`` (float32, ``dim`` values, unit L2 norm) is the embedding of the answer of
  the ``descriptions`` row with the same (video_id, describe_key, object_ids), made by ``embedder_id``
  (``library:model@revision:dim``). Parquet stores it as a list (one table schema for every dimension);
  the ``description_vectors`` view exposes the store's embedder's vectors as ``FLOAT[dim]``
  (sql/views/15_description_vectors.sql).
- ``objects.tracked_at`` is when the tracking unit was produced; it breaks ties in the choice of a
  video's *latest* tracking (see ``sql/views/10_latest_tracks.sql`` and docs/store.md).

Schema versions: every table has a version (``SCHEMA_VERSIONS``); a writer stamps it in the file footer
(``pixelrefer.schema_version``) and files are always written with the exact current schema. Older
versions of a table are listed in ``SCHEMA_HISTORY`` (only ever nullable columns appended), so files
written by an older version are still recognised (``file_schema_version``); anything else is a foreign
schema. Views never guess with ``union_by_name``: see storage.views for how older files are read.

Unit keys (one Parquet file per unit): ``videos`` -> ``"probe"``; ``objects``, ``object_frames`` and
``object_thumbnails`` -> the ``track_key``; ``descriptions`` -> the ``describe_key``;
``description_vectors`` -> ``<describe_key>.<embedder key>`` (one unit per video x describe_key x
embedder). Which catalog stage
produces which tables is ``STAGE_TABLES``; which tables are small enough to be copied into the views
file at every refresh is ``MATERIALIZED_TABLES`` (the others are read from Parquet at query time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from storage.errors import StoreError
from storage.layout import (
    COMPRESSION,
    MATERIALIZED_TABLES,
    SCHEMA_VERSIONS,
    STAGE_TABLES,
    TABLE_NAMES,
    TABLE_STAGE,
)

__all__ = [
    "COMPRESSION",
    "MATERIALIZED_TABLES",
    "SCHEMAS",
    "SCHEMA_HISTORY",
    "SCHEMA_VERSIONS",
    "STAGE_TABLES",
    "TABLE_NAMES",
    "TABLE_STAGE",
    "UNIT_KEY_DOC",
    "conform_table",
    "empty_table",
    "file_schema_version",
    "schema_of",
    "stamped",
    "table_from_records",
]

_TS = pa.timestamp("us", tz="UTC")
_IDS = pa.list_(pa.int64())


def _f(name: str, type_: pa.DataType, nullable: bool = False, doc: str = "") -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc} if doc else None)


SCHEMAS: dict[str, pa.Schema] = {
    "videos": pa.schema(
        [
            _f("video_id", pa.string(), doc="sha256 hex of the video bytes"),
            _f("uri", pa.string(), doc="where the video was read from (path or fsspec URL)"),
            _f("size_bytes", pa.int64()),
            _f("fps", pa.float64(), True, "average frames per second"),
            _f("num_frames", pa.int64(), True),
            _f("duration_s", pa.float64(), True, "seconds"),
            _f("width", pa.int64(), True, "pixels"),
            _f("height", pa.int64(), True, "pixels"),
            _f("probed_at", _TS, True, "UTC"),
            _f("decoded_frames", pa.int64(), True, "frames that decode (v2; null: not measured)"),
            _f("partial_reason", pa.string(), True, "why decoding stops before num_frames (v2; null: complete)"),
        ]
    ),
    "objects": pa.schema(
        [
            _f("video_id", pa.string()),
            _f("track_key", pa.string(), doc="hash of the tracking configuration"),
            _f("object_id", pa.int64(), doc="id of the object within (video_id, track_key)"),
            _f("first_frame", pa.int64()),
            _f("last_frame", pa.int64()),
            _f("t_start", pa.float64(), doc="seconds from video start"),
            _f("t_end", pa.float64(), doc="seconds from video start"),
            _f("frames_present", pa.int64()),
            _f("max_area", pa.int64(), True, "pixels"),
            _f("mean_area_frac", pa.float64(), True, "mean area / frame area"),
            _f("mean_score", pa.float32(), True),
            _f("discovered_by", pa.string(), True, "'auto' | 'prompt'"),
            _f("color", pa.string(), True, "dominant colour name"),
            _f("mean_speed_px_s", pa.float64(), True, "pixels per second"),
            _f("direction_deg", pa.float64(), True, "0 right, 90 up, 180 left, 270 down (image up = -y)"),
            _f("tracked_at", _TS, True, "UTC; when the tracking unit was produced"),
            _f("label", pa.string(), True, "concept label (SAM 3 named concepts; v2; null: none)"),
            _f("label_score", pa.float32(), True, "score of the concept label (v2)"),
        ]
    ),
    "object_frames": pa.schema(
        [
            _f("video_id", pa.string()),
            _f("track_key", pa.string()),
            _f("object_id", pa.int64()),
            _f("frame_idx", pa.int64()),
            _f("t", pa.float64(), doc="seconds from video start"),
            _f("x0", pa.float32(), doc="pixels, inclusive"),
            _f("y0", pa.float32(), doc="pixels, inclusive"),
            _f("x1", pa.float32(), doc="pixels, exclusive"),
            _f("y1", pa.float32(), doc="pixels, exclusive"),
            _f("area", pa.int64(), doc="mask pixels"),
            _f("score", pa.float32(), True),
            _f("mask_rle", pa.string(), True, "COCO compressed RLE counts"),
            _f("mask_h", pa.int64(), True),
            _f("mask_w", pa.int64(), True),
        ]
    ),
    "descriptions": pa.schema(
        [
            _f("video_id", pa.string()),
            _f("track_key", pa.string()),
            _f("object_ids", _IDS, doc="objects the answer is about (one for a caption)"),
            _f("describe_key", pa.string()),
            _f("prompt_id", pa.string()),
            _f("prompt", pa.string()),
            _f("task", pa.string(), doc="'caption' | 'qa' | ..."),
            _f("answer", pa.string(), True),
            _f("model_id", pa.string(), True),
            _f("frames_used", _IDS, True, "frame indices shown to the model"),
            _f("n_tokens", pa.int64(), True),
            _f("latency_ms", pa.float64(), True),
            _f("run_id", pa.string(), True),
            _f("created_at", _TS, True, "UTC"),
        ]
    ),
    "object_thumbnails": pa.schema(
        [
            _f("video_id", pa.string()),
            _f("track_key", pa.string()),
            _f("object_id", pa.int64()),
            _f("frame_idx", pa.int64(), doc="the object's best frame (score x sqrt(area), as describe chooses)"),
            _f("t", pa.float64(), doc="seconds from video start"),
            _f("crop_x0", pa.int64(), doc="the crop's box in the full frame, pixels, inclusive"),
            _f("crop_y0", pa.int64(), doc="pixels, inclusive"),
            _f("crop_x1", pa.int64(), doc="pixels, exclusive"),
            _f("crop_y1", pa.int64(), doc="pixels, exclusive"),
            _f("crop_jpeg", pa.binary(), doc="JPEG of the crop (box + context) with the mask outline"),
            _f("crop_w", pa.int64(), doc="pixels of the crop JPEG"),
            _f("crop_h", pa.int64(), doc="pixels of the crop JPEG"),
            _f("frame_jpeg", pa.binary(), doc="JPEG of the whole frame at reduced size"),
            _f("frame_w", pa.int64(), doc="pixels of the frame JPEG"),
            _f("frame_h", pa.int64(), doc="pixels of the frame JPEG"),
        ]
    ),
    "description_vectors": pa.schema(
        [
            _f("video_id", pa.string()),
            _f("track_key", pa.string()),
            _f("describe_key", pa.string()),
            _f("object_ids", _IDS, doc="objects the described answer is about"),
            _f("prompt_id", pa.string()),
            _f("embedder_id", pa.string(), doc="library:model@revision:dim of the embedder"),
            _f("dim", pa.int32(), doc="length of vector"),
            _f("vector", pa.list_(pa.float32()), doc="embedding of the answer, unit L2 norm"),
        ]
    ),
}

assert tuple(SCHEMAS) == TABLE_NAMES, "storage.layout.TABLE_NAMES must list SCHEMAS in order"

UNIT_KEY_DOC = {
    "videos": "'probe'",
    "objects": "track_key",
    "object_frames": "track_key",
    "descriptions": "describe_key",
    "object_thumbnails": "track_key",
    "description_vectors": "describe_key + '.' + embedder key",
}

def _without(schema: pa.Schema, *names: str) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in names])


# {table: {version: schema}} of every version a file of the table may have been written with.
SCHEMA_HISTORY: dict[str, dict[int, pa.Schema]] = {
    name: {SCHEMA_VERSIONS[name]: schema} for name, schema in SCHEMAS.items()
}
SCHEMA_HISTORY["videos"][1] = _without(SCHEMAS["videos"], "decoded_frames", "partial_reason")
SCHEMA_HISTORY["objects"][1] = _without(SCHEMAS["objects"], "label", "label_score")

_META_TABLE = b"pixelrefer.table"
_META_VERSION = b"pixelrefer.schema_version"


def schema_of(table_name: str) -> pa.Schema:
    """The schema of `table_name`, or StoreError naming the known tables."""
    try:
        return SCHEMAS[table_name]
    except KeyError:
        raise StoreError(f"unknown table {table_name!r}; known tables: {', '.join(TABLE_NAMES)}") from None


def empty_table(table_name: str) -> pa.Table:
    """A zero-row table with the schema of `table_name`."""
    return schema_of(table_name).empty_table()


def stamped(table_name: str, table: pa.Table) -> pa.Table:
    """`table` with the footer metadata naming its table and schema version (what writers store)."""
    return table.replace_schema_metadata(
        {_META_TABLE: table_name.encode(), _META_VERSION: str(SCHEMA_VERSIONS[table_name]).encode()}
    )


def _signature(schema: pa.Schema) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in schema}


def file_schema_version(table_name: str, schema: pa.Schema) -> int | None:
    """The version of `table_name` a file's arrow schema matches (names and types), or None (foreign)."""
    sig = _signature(schema)
    for version, known in sorted(SCHEMA_HISTORY[table_name].items(), reverse=True):
        if sig == _signature(known):
            return version
    return None


def _first_bad_row(column: list[Any], type_: pa.DataType) -> tuple[int, str]:
    """Index and reason of the first value of `column` that does not convert to `type_`."""
    for i, value in enumerate(column):
        try:
            pa.array([value], type=type_)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
            return i, str(exc)
    return -1, "unknown conversion error"  # pragma: no cover - the column failed as a whole only


def table_from_records(table_name: str, records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a Table of `table_name` from dicts, one per row, validated against its schema.

    Every non-nullable column must be present and not None; nullable columns may be omitted (null).
    Unknown keys are an error (a typo should not vanish silently); timestamps must be timezone-aware.
    Raises StoreError naming the table, the row index and the column. The happy path is one
    `pa.Table.from_pylist` call; rows are inspected one by one only to name the culprit of an error.
    """
    schema = schema_of(table_name)
    rows = records if isinstance(records, list) else list(records)
    names = set(schema.names)
    unknown = set().union(*rows) - names if rows else set()
    if unknown:
        i = next(i for i, r in enumerate(rows) if set(r) - names)
        raise StoreError(
            f"{table_name} row {i}: unknown column(s) {sorted(set(rows[i]) - names)}; the columns are {schema.names}"
        )
    for field in schema:
        if pa.types.is_timestamp(field.type):
            for i, r in enumerate(rows):
                value = r.get(field.name)
                if isinstance(value, dt.datetime) and value.tzinfo is None:
                    raise StoreError(
                        f"{table_name} row {i}: column {field.name!r}: naive datetime; give a timezone-aware "
                        "(UTC) datetime"
                    )
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        for field in schema:
            values = [r.get(field.name) for r in rows]
            try:
                pa.array(values, type=field.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                i, reason = _first_bad_row(values, field.type)
                raise StoreError(
                    f"{table_name} row {i}: column {field.name!r} does not fit type {field.type}: {reason}"
                ) from None
        raise  # pragma: no cover - every column converts alone
    for field in schema:
        if not field.nullable and table.column(field.name).null_count:
            i = int(pc.index(pc.is_null(table.column(field.name)), True).as_py())
            raise StoreError(f"{table_name} row {i}: column {field.name!r} is required but missing/None")
    return table


def conform_table(table_name: str, table: pa.Table) -> pa.Table:
    """Return `table` with exactly the schema of `table_name`: columns reordered, safely cast,
    missing nullable columns added as nulls. Raises StoreError for unknown or missing required
    columns, nulls in required columns and values that do not cast."""
    schema = schema_of(table_name)
    unknown = set(table.column_names) - set(schema.names)
    if unknown:
        raise StoreError(f"{table_name}: unknown column(s) {sorted(unknown)}; the columns are {schema.names}")
    arrays = []
    for field in schema:
        if field.name not in table.column_names:
            if not field.nullable:
                raise StoreError(f"{table_name}: required column {field.name!r} is missing")
            arrays.append(pa.nulls(table.num_rows, type=field.type))
            continue
        column = table.column(field.name)
        if not field.nullable and column.null_count:
            raise StoreError(f"{table_name}: required column {field.name!r} has {column.null_count} null(s)")
        try:
            arrays.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise StoreError(f"{table_name}: column {field.name!r} does not cast to {field.type}: {exc}") from None
    return pa.Table.from_arrays(arrays, schema=schema)
