"""Explicit pyarrow schemas of the four tables of record, and a validating row -> Table builder.

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
- ``objects.tracked_at`` is not in DESIGN.md's list: it is when the tracking unit was produced, and
  it defines which ``track_key`` of a video is the *latest* (see ``sql/views``). It may be omitted
  (null) by writers; then the latest tracking falls back to the greatest ``track_key``.

Unit keys (one Parquet file per unit): ``videos`` -> ``"probe"``; ``objects`` and
``object_frames`` -> the ``track_key``; ``descriptions`` -> the ``describe_key``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from storage.errors import StoreError

__all__ = [
    "SCHEMAS",
    "TABLE_NAMES",
    "UNIT_KEY_DOC",
    "conform_table",
    "empty_table",
    "schema_of",
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
            _f("tracked_at", _TS, True, "UTC; defines the latest track_key of a video"),
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
}

TABLE_NAMES: tuple[str, ...] = tuple(SCHEMAS)

UNIT_KEY_DOC = {
    "videos": "'probe'",
    "objects": "track_key",
    "object_frames": "track_key",
    "descriptions": "describe_key",
}


def schema_of(table_name: str) -> pa.Schema:
    """The schema of `table_name`, or StoreError naming the known tables."""
    try:
        return SCHEMAS[table_name]
    except KeyError:
        raise StoreError(f"unknown table {table_name!r}; known tables: {', '.join(TABLE_NAMES)}") from None


def empty_table(table_name: str) -> pa.Table:
    """A zero-row table with the schema of `table_name`."""
    return schema_of(table_name).empty_table()


def _normalise(value: Any, type_: pa.DataType) -> Any:
    if pa.types.is_timestamp(type_) and isinstance(value, dt.datetime) and value.tzinfo is None:
        raise TypeError("naive datetime; give a timezone-aware (UTC) datetime")
    return value


def table_from_records(table_name: str, records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a Table of `table_name` from dicts, one per row, validated against its schema.

    Every non-nullable column must be present and not None; nullable columns may be omitted (null).
    Unknown keys are an error (a typo should not vanish silently). Raises StoreError naming the
    table, the row index and the column.
    """
    schema = schema_of(table_name)
    names = set(schema.names)
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for i, record in enumerate(records):
        unknown = set(record) - names
        if unknown:
            raise StoreError(
                f"{table_name} row {i}: unknown column(s) {sorted(unknown)}; the columns are {schema.names}"
            )
        for field in schema:
            value = record.get(field.name)
            if value is None and not field.nullable:
                raise StoreError(f"{table_name} row {i}: column {field.name!r} is required but missing/None")
            try:
                columns[field.name].append(_normalise(value, field.type))
            except TypeError as exc:
                raise StoreError(f"{table_name} row {i}: column {field.name!r}: {exc}") from None
    arrays = []
    for field in schema:
        try:
            arrays.append(pa.array(columns[field.name], type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
            raise StoreError(
                f"{table_name}: column {field.name!r} does not fit type {field.type}: {exc}"
            ) from None
    return pa.Table.from_arrays(arrays, schema=schema)


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
