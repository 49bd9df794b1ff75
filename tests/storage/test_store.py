import os
import subprocess
import sys
import textwrap

import duckdb
import pytest

from storage import SCHEMAS, Store, StoreError, table_from_records
from storage.query import run_query
from storage.views import view_names


def _count(store, sql):
    return run_query(store.db_path, sql)[1][0][0]


def test_empty_store_views_exist_with_columns(store):
    store.refresh_views()
    con = duckdb.connect(store.db_path, read_only=True)
    con.execute(f"SET file_search_path = '{store.root}'")  # the views file names its files relative to the root
    try:
        names = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        assert names == set(view_names())
        assert set(SCHEMAS) <= names and {"latest_objects", "object_captions", "latest_descriptions"} <= names
        for table, schema in SCHEMAS.items():
            assert con.execute(f"SELECT * FROM {table}").fetchall() == []
            assert [d[0] for d in con.execute(f"SELECT * FROM {table}").description] == schema.names
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE descriptions)").fetchall())
        assert types["object_ids"] == "BIGINT[]" and types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    finally:
        con.close()


def test_write_read_round_trip_and_units(populated, fx):
    objs = populated.read_table("objects", f"video_id = '{fx.VIDEO_A}'")
    assert objs.schema == SCHEMAS["objects"] and objs.num_rows == 4
    assert populated.has_unit("objects", fx.VIDEO_A, fx.NEW_TRACK)
    assert not populated.has_unit("objects", fx.VIDEO_B, fx.OLD_TRACK)
    assert populated.list_units("objects") == sorted(
        [(fx.VIDEO_A, fx.NEW_TRACK), (fx.VIDEO_A, fx.OLD_TRACK), (fx.VIDEO_B, fx.NEW_TRACK)])
    assert populated.list_units("objects", fx.VIDEO_B) == [(fx.VIDEO_B, fx.NEW_TRACK)]
    assert os.path.isfile(os.path.join(populated.root, "objects", f"video_id={fx.VIDEO_A}", "track-new.parquet"))
    assert populated.delete_unit("objects", fx.VIDEO_B, fx.NEW_TRACK)
    assert not populated.delete_unit("objects", fx.VIDEO_B, fx.NEW_TRACK)
    populated.refresh_views()  # objects is a native table of the views file: a refresh brings the change
    assert _count(populated, "SELECT count(*) FROM objects WHERE video_id LIKE 'b%'") == 0


def test_rewriting_a_unit_replaces_it(populated, fx):
    before = _count(populated, "SELECT count(*) FROM object_frames")
    rows = fx.frame_rows(fx.VIDEO_A, fx.NEW_TRACK, 1, [0, 1, 2, 3], 20, -2) + \
        fx.frame_rows(fx.VIDEO_A, fx.NEW_TRACK, 2, [1, 2, 3, 4], 2, 0)
    for _ in range(2):
        populated.write_unit("object_frames", fx.VIDEO_A, fx.NEW_TRACK, table_from_records("object_frames", rows))
    populated.refresh_views()
    assert _count(populated, "SELECT count(*) FROM object_frames") == before
    dup = "SELECT count(*) FROM (SELECT video_id, track_key, object_id, frame_idx FROM object_frames GROUP BY ALL HAVING count(*) > 1)"
    assert _count(populated, dup) == 0
    # replacing with fewer rows really replaces
    populated.write_unit("object_frames", fx.VIDEO_A, fx.NEW_TRACK, table_from_records("object_frames", rows[:1]))
    assert _count(populated, "SELECT count(*) FROM object_frames") == before - len(rows) + 1


def test_write_unit_validates_names_and_video_id(store, fx):
    t = table_from_records("objects", [fx.object_row(fx.VIDEO_A, "k", 1, 0.0, 1.0, "red", 1.0)])
    with pytest.raises(StoreError, match="rows carry video_id"):
        store.write_unit("objects", fx.VIDEO_B, "k", t)
    for bad in ("../x", ".hidden", "a/b", ""):
        with pytest.raises(StoreError, match="not usable in a file name"):
            store.write_unit("objects", fx.VIDEO_A, bad, t)


def test_failed_rename_leaves_nothing_visible(populated, fx, monkeypatch):
    rows = [fx.object_row(fx.VIDEO_B, "crashy", 1, 0.0, 1.0, "red", 1.0)]

    def boom(src, dst):
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk vanished"):
        populated.write_unit("objects", fx.VIDEO_B, "crashy", table_from_records("objects", rows))
    monkeypatch.undo()
    folder = os.path.join(populated.root, "objects", f"video_id={fx.VIDEO_B}")
    assert sorted(os.listdir(folder)) == ["track-new.parquet"]  # temp removed, no final file
    assert not populated.has_unit("objects", fx.VIDEO_B, "crashy")


def test_process_killed_between_write_and_rename_leaves_only_a_hidden_temp(populated, fx):
    script = textwrap.dedent(f"""
        import os
        from storage import Store, table_from_records
        s = Store.open({populated.root!r})
        os.replace = lambda src, dst: os._exit(9)   # die after the temp is written, before the rename
        rows = [dict(video_id={fx.VIDEO_B!r}, track_key="killed", object_id=7, first_frame=0, last_frame=1,
                     t_start=0.0, t_end=0.1, frames_present=2)]
        s.write_unit("objects", {fx.VIDEO_B!r}, "killed", table_from_records("objects", rows))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    folder = os.path.join(populated.root, "objects", f"video_id={fx.VIDEO_B}")
    temps = [n for n in os.listdir(folder) if n.endswith(".partial")]
    assert len(temps) == 1 and temps[0].startswith(".tmp-")
    assert populated.list_units("objects", fx.VIDEO_B) == [(fx.VIDEO_B, fx.NEW_TRACK)]
    populated.refresh_views()
    assert _count(populated, "SELECT count(*) FROM objects WHERE object_id = 7") == 0
    # a young temp survives re-opening (it could be a live writer's); a stale one is cleaned
    Store.open(populated.root).close()
    assert any(n.endswith(".partial") for n in os.listdir(folder))
    Store.open(populated.root, stale_temp_s=0).close()
    assert not any(n.endswith(".partial") for n in os.listdir(folder))


def test_read_table_of_views_and_errors(populated):
    assert populated.read_table("latest_objects").num_rows == 4
    with pytest.raises(StoreError, match="unknown table or view 'nope'"):
        populated.read_table("nope")
    with pytest.raises(StoreError, match="reading objects with filter"):
        populated.read_table("objects", "no_such_column = 1")


def test_open_missing_store_without_create(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Store.open(tmp_path / "absent", create=False)
