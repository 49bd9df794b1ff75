import datetime as dt

import pyarrow as pa
import pytest

from storage import SCHEMAS, StoreError, table_from_records
from storage.schemas import conform_table

DESIGN_COLUMNS = {
    "videos": "video_id uri size_bytes fps num_frames duration_s width height probed_at decoded_frames partial_reason",
    "objects": "video_id track_key object_id first_frame last_frame t_start t_end frames_present max_area "
    "mean_area_frac mean_score discovered_by color mean_speed_px_s direction_deg tracked_at label label_score",
    "object_frames": "video_id track_key object_id frame_idx t x0 y0 x1 y1 area score mask_rle mask_h mask_w",
    "descriptions": "video_id track_key object_ids describe_key prompt_id prompt task answer model_id "
    "frames_used n_tokens latency_ms run_id created_at",
}


def test_schemas_have_the_design_columns_and_types():
    for name, cols in DESIGN_COLUMNS.items():
        assert SCHEMAS[name].names == cols.split()
    assert SCHEMAS["object_frames"].field("frame_idx").type == pa.int64()
    assert SCHEMAS["object_frames"].field("t").type == pa.float64()
    assert SCHEMAS["descriptions"].field("object_ids").type == pa.list_(pa.int64())
    assert SCHEMAS["videos"].field("probed_at").type == pa.timestamp("us", tz="UTC")


def test_table_from_records_builds_typed_table_and_fills_optional(fx):
    t = table_from_records("objects", [fx.object_row(fx.VIDEO_A, "k", 1, 0.0, 1.0, "red", 180.0)])
    assert t.schema == SCHEMAS["objects"]
    assert t.column("tracked_at").to_pylist() == [None]


def test_missing_required_column_names_row_and_column(fx):
    row = fx.object_row(fx.VIDEO_A, "k", 1, 0.0, 1.0, "red", 180.0)
    del row["track_key"]
    with pytest.raises(StoreError, match=r"objects row 0: column 'track_key' is required"):
        table_from_records("objects", [row])


def test_unknown_column_and_bad_type_and_naive_time_are_refused(fx):
    row = fx.object_row(fx.VIDEO_A, "k", 1, 0.0, 1.0, "red", 180.0)
    with pytest.raises(StoreError, match="unknown column"):
        table_from_records("objects", [{**row, "colour": "red"}])
    with pytest.raises(StoreError, match="'object_id' does not fit"):
        table_from_records("objects", [{**row, "object_id": "one"}])
    with pytest.raises(StoreError, match="naive datetime"):
        table_from_records("objects", [{**row, "tracked_at": dt.datetime(2026, 1, 1)}])
    with pytest.raises(StoreError, match="unknown table"):
        table_from_records("object", [row])


def test_conform_table_reorders_and_casts_and_rejects_nulls():
    t = pa.table({"uri": ["u"], "video_id": ["v"], "size_bytes": pa.array([3], pa.int32())})
    out = conform_table("videos", t)
    assert out.schema == SCHEMAS["videos"] and out.column("size_bytes").to_pylist() == [3]
    with pytest.raises(StoreError, match="required column 'uri' has 1 null"):
        conform_table("videos", pa.table({"video_id": ["v"], "uri": pa.array([None], pa.string()),
                                          "size_bytes": [1]}))
