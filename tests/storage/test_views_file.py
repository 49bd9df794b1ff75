"""The views file: same rows as the Parquet files, incremental refresh = full build, per-video macros that
read only their video's folder, no absolute path (a copied store works, another store is never read),
"latest" = asked for last, video paths, schema v2 columns and older files."""

import datetime as dt
import os
import random
import re
import shutil
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage import Store, table_from_records
from storage.query import run_query
from storage.schemas import SCHEMA_HISTORY

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TABLES = ("videos", "objects", "object_frames", "descriptions")


def q(store, sql):
    return run_query(store.db_path, sql)[1]


def generate(store, fx, n_videos=6, seed=0, tracks=("k1", "k2")):
    """A random store (seeded): every video probed, tracked with each key, described once per tracking."""
    rng = random.Random(seed)
    for v in range(n_videos):
        vid = f"{v:064x}"
        fx_video(store, vid, f"/archive/cam{v}.mp4")
        for key in tracks:  # tracked now, in this order (as a real tracker stamps tracked_at)
            write_tracking(store, fx, vid, key, rng.randint(0, 4), dt.datetime.now(dt.UTC), rng)


def fx_video(store, vid, uri):
    store.write_unit("videos", vid, "probe", table_from_records("videos", [dict(
        video_id=vid, uri=uri, size_bytes=1000, fps=10.0, num_frames=50, duration_s=5.0, width=32, height=24,
        probed_at=T0, decoded_frames=50)]))


def write_tracking(store, fx, vid, key, n_objects, tracked_at, rng=None):
    rng = rng or random.Random(0)
    objs, frames = [], []
    for oid in range(1, n_objects + 1):
        t0 = rng.randint(0, 30) / 10
        objs.append(fx.object_row(vid, key, oid, t0, t0 + 1, rng.choice(["red", "blue"]), rng.choice([0.0, 180.0]),
                                  tracked_at=tracked_at))
        frames += fx.frame_rows(vid, key, oid, list(range(int(t0 * 10), int(t0 * 10) + rng.randint(1, 4))), 2, 1)
    store.write_unit("object_frames", vid, key, table_from_records("object_frames", frames))
    store.write_unit("objects", vid, key, table_from_records("objects", objs))
    if objs:
        store.write_unit("descriptions", vid, f"d-{key}", table_from_records("descriptions", [
            fx.description_row(vid, key, [1], f"d-{key}", "Describe this object.", "caption", f"thing {vid[-2:]}",
                               tracked_at)]))


def direct(store, table):
    """Every row of `table` read straight from its Parquet files (no views), sorted."""
    files = [store.unit_path(table, v, k) for v, k in store.list_units(table)]
    if not files:
        return []
    rows = pa.concat_tables([pq.read_table(f, partitioning=None) for f in files]).to_pylist()
    return sorted(rows, key=repr)


def through_views(store, table):
    con = store.connect(refresh=False)
    try:
        rows = con.sql(f"SELECT * FROM {table}").to_arrow_table().to_pylist()
    finally:
        con.close()
    return sorted(rows, key=repr)


def test_views_give_the_rows_of_the_files(store, fx):
    generate(store, fx)
    store.refresh_views()
    for table in TABLES:
        assert through_views(store, table) == direct(store, table), table
    # latest_tracks without any request: the tracking made last, also when it found zero objects
    latest = dict(q(store, "SELECT video_id, track_key FROM latest_tracks"))
    assert latest == {f"{v:064x}": "k2" for v in range(6)}


def test_incremental_refreshes_equal_a_full_build(store, fx):
    generate(store, fx, n_videos=5)
    assert not store.refresh_views().incremental
    rng = random.Random(1)
    for step in range(4):  # new units, a rewritten unit, a deleted unit, new units again
        vid = f"{rng.randrange(8):064x}"
        action = step % 3
        if action == 0:  # a new or replaced tracking
            fx_video(store, vid, f"/archive/new{step}.mp4")
            write_tracking(store, fx, vid, "k3", rng.randint(0, 3), T0 + dt.timedelta(days=step), rng)
        elif action == 1:  # a unit rewritten in place
            write_tracking(store, fx, f"{1:064x}", "k1", rng.randint(1, 3), T0 + dt.timedelta(days=step), rng)
        else:  # a unit deleted
            gone_vid, gone_key = rng.choice(store.list_units("objects"))
            for table in ("objects", "object_frames"):
                store.delete_unit(table, gone_vid, gone_key)
        report = store.refresh_views()
        assert report.incremental and (report.added or report.changed or report.removed), (step, action, report)
        incremental = {t: through_views(store, t) for t in (*TABLES, "latest_tracks", "object_captions")}
        os.remove(store.db_path)
        assert not store.refresh_views().incremental
        full = {t: through_views(store, t) for t in incremental}
        assert incremental == full, step
        for table in TABLES:
            assert full[table] == direct(store, table)
    assert store.refresh_views().added == 0  # nothing changed: the file is kept as it is


def _files_read(store, sql):
    (_, plan), = q(store, "EXPLAIN ANALYZE " + sql)
    total = sum(int(n) for n in re.findall(r"Total Files Read: (\d+)", plan))
    scanning = re.findall(r"Scanning Files: (\d+)/(\d+)", plan)
    return total, scanning


def test_macros_read_only_their_videos_folder(store, fx):
    generate(store, fx, n_videos=4)
    store.refresh_views()
    vid = q(store, "SELECT min(video_id) FROM latest_tracks WHERE n_objects > 0")[0][0]
    n_files = len(store.list_units("object_frames", vid))
    total, scanning = _files_read(store, f"SELECT count(*) FROM video_frames('{vid}')")
    assert total == n_files and scanning == []  # its own files only; no other folder listed
    total, scanning = _files_read(store, f"SELECT count(*) FROM object_frames WHERE video_id = '{vid}'")
    assert scanning == [(str(n_files), str(len(store.list_units("object_frames"))))]  # the view lists them all
    # a damaged file of another video does not matter to the macros
    frames = direct(store, "object_frames")
    other = store.unit_path("object_frames", next(v for v, _ in store.list_units("object_frames") if v != vid), "k1")
    open(other, "wb").write(b"not parquet")
    assert q(store, f"SELECT count(*) FROM video_frames('{vid}')") == [(sum(1 for r in frames if r["video_id"] == vid),)]
    key = q(store, f"SELECT track_key FROM latest_tracks WHERE video_id = '{vid}'")[0][0]
    oid = q(store, f"SELECT min(object_id) FROM latest_objects WHERE video_id = '{vid}'")[0][0]
    timeline = q(store, f"SELECT frame_idx, track_key FROM object_timeline('{vid}', {oid})")
    want = sorted((r["frame_idx"], key) for r in frames
                  if r["video_id"] == vid and r["track_key"] == key and r["object_id"] == oid)
    assert timeline == want and want
    assert q(store, f"SELECT count(*) FROM video_frames('{'f' * 64}')") == [(0,)]  # unknown video: no rows


def test_a_copied_store_works_and_never_reads_another_store(tmp_path, fx, monkeypatch):
    first = Store.open(tmp_path / "first")
    fx.populate(first)
    first.refresh_views()
    first.close()
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "first", moved)
    shutil.rmtree(tmp_path / "first")
    assert b"/first" not in (moved / "views.duckdb").read_bytes()  # no absolute path inside
    db = str(moved / "views.duckdb")
    assert run_query(db, "SELECT count(*) FROM latest_object_frames")[1] == [(10,)]
    # a plain DuckDB client: set file_search_path (or start in the store folder)
    con = duckdb.connect(db, read_only=True)
    con.execute(f"SET file_search_path = '{moved}'")
    assert con.execute("SELECT count(*) FROM object_frames").fetchall() == [(12,)]
    con.close()
    monkeypatch.chdir(moved)
    con = duckdb.connect("views.duckdb", read_only=True)
    assert con.execute(f"SELECT count(*) FROM video_frames('{fx.VIDEO_A}')").fetchall() == [(10,)]
    con.close()
    # from another store's folder its relative paths would find that store's files: refused, not read
    other = Store.open(tmp_path / "other")
    fx.populate(other)
    other.refresh_views()
    monkeypatch.chdir(other.root)
    con = duckdb.connect(db, read_only=True)
    for sql in ("SELECT count(*) FROM object_frames", f"SELECT count(*) FROM video_frames('{fx.VIDEO_A}')"):
        with pytest.raises(duckdb.Error, match="belongs to pixelrefer store"):
            con.execute(sql).fetchall()
    assert con.execute("SELECT count(*) FROM objects").fetchall() == [(5,)]  # native tables need no path
    con.close()
    monkeypatch.chdir(tmp_path)  # from an unrelated folder: an error, never silence
    con = duckdb.connect(db, read_only=True)
    with pytest.raises(duckdb.Error):
        con.execute("SELECT count(*) FROM object_frames").fetchall()
    con.close()


def test_latest_is_the_tracking_asked_for_last(store, fx):
    vid = fx.VIDEO_A
    fx_video(store, vid, "/a.mp4")
    cat = store.catalog

    def run(key, n_objects, tracked_hours):
        run_id = cat.start_run("archive", {"key": key})
        cat.record_request(run_id, "track", vid, key)
        if cat.unit_state("track", vid, key) != "done":  # skipped when done, as the flows do
            write_tracking(store, fx, vid, key, n_objects, T0 + dt.timedelta(hours=tracked_hours))
            cat.mark_done("track", vid, key, rows={"objects": n_objects})
        store.refresh_views()
        time.sleep(0.002)
        return q(store, f"SELECT track_key, n_objects FROM latest_tracks WHERE video_id = '{vid}'")

    assert run("A", 2, 0) == [("A", 2)]
    assert run("B", 3, 1) == [("B", 3)]
    assert run("A", 2, 0) == [("A", 2)]  # A is current again although it was skipped as done
    assert q(store, "SELECT DISTINCT track_key FROM latest_objects") == [("A",)]
    assert run("C", 0, 2) == [("C", 0)]  # a newer tracking that found nothing still counts
    assert q(store, "SELECT count(*) FROM latest_objects") == [(0,)]
    cat.claim_unit("track", vid, "D", "w")  # asked for, files written, but not done yet: not current
    cat.record_request(None, "track", vid, "D")
    write_tracking(store, fx, vid, "D", 1, T0 + dt.timedelta(hours=5))
    store.refresh_views()
    assert q(store, f"SELECT track_key FROM latest_tracks WHERE video_id = '{vid}'") == [("C",)]


def test_video_paths_and_v2_columns(store, fx):
    fx_video(store, fx.VIDEO_A, "/a/cam.mp4")
    store.catalog.record_video_path(fx.VIDEO_A, "/a/cam.mp4", 1000)
    store.catalog.record_video_path(fx.VIDEO_A, "/b/same-bytes.mp4", 1000)
    objs = [dict(fx.object_row(fx.VIDEO_A, "k", 1, 0.0, 1.0, "red", 0.0), label="car", label_score=0.75)]
    store.write_unit("objects", fx.VIDEO_A, "k", table_from_records("objects", objs))
    # a unit written by the v1 code (no v2 columns) still reads, its new columns null
    v1 = SCHEMA_HISTORY["videos"][1]
    old = pa.Table.from_pylist([dict(video_id=fx.VIDEO_B, uri="/old.mp4", size_bytes=5, probed_at=T0)], schema=v1)
    os.makedirs(os.path.dirname(store.unit_path("videos", fx.VIDEO_B, "probe")))
    pq.write_table(old, store.unit_path("videos", fx.VIDEO_B, "probe"))
    assert store.check_unit("videos", fx.VIDEO_B, "probe").schema_version == 1
    store.refresh_views()
    assert q(store, "SELECT video_id, uri FROM video_paths ORDER BY uri") == [
        (fx.VIDEO_A, "/a/cam.mp4"), (fx.VIDEO_A, "/b/same-bytes.mp4")]
    assert q(store, "SELECT video_id, decoded_frames, partial_reason FROM videos ORDER BY video_id") == [
        (fx.VIDEO_A, 50, None), (fx.VIDEO_B, None, None)]
    assert q(store, "SELECT label, label_score FROM latest_objects") == [("car", 0.75)]


def _age_folders(store, seconds=60):
    """Make every video folder look `seconds` old (a refresh trusts folder mtimes older than 2 s)."""
    old = time.time() - seconds
    for table in TABLES:
        base = os.path.join(store.root, table)
        for name in os.listdir(base):
            os.utime(os.path.join(base, name), (old, old))


def test_refresh_lists_again_only_the_folders_that_changed(store, fx):
    generate(store, fx, n_videos=4)
    store.refresh_views()
    _age_folders(store)
    store.refresh_views()  # records the (now trusted) folder times
    vid = f"{1:064x}"
    # a unit written into an old folder changes the folder's mtime: seen by the next refresh
    write_tracking(store, fx, vid, "k9", 2, dt.datetime.now(dt.UTC))
    report = store.refresh_views()
    assert report.added == 3 and report.changed == 0  # objects, object_frames, descriptions of k9
    assert ("k9",) in q(store, f"SELECT DISTINCT track_key FROM objects WHERE video_id = '{vid}'")
    # a folder whose mtime did not change is not listed again (a file changed in place, then the folder's
    # time put back: only `verify` reads every footer)
    _age_folders(store)
    store.refresh_views()
    path = store.unit_path("videos", vid, "probe")
    folder_times = os.stat(os.path.dirname(path))
    fx_video(store, vid, "/archive/renamed.mp4")  # rewrites videos/<vid>/probe.parquet (size unchanged)
    os.utime(os.path.dirname(path), ns=(folder_times.st_atime_ns, folder_times.st_mtime_ns))
    store.refresh_views()
    assert q(store, f"SELECT uri FROM videos WHERE video_id = '{vid}'") == [("/archive/cam1.mp4",)]
    os.utime(os.path.dirname(path))  # the folder changed now: listed again
    store.refresh_views()
    assert q(store, f"SELECT uri FROM videos WHERE video_id = '{vid}'") == [("/archive/renamed.mp4",)]
