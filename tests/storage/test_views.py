import json
import os
import subprocess
import sys
import textwrap
import time

from storage import table_from_records
from storage.query import run_query


def q(store, sql):
    return run_query(store.db_path, sql)[1]


def test_latest_tracks_pick_the_greatest_tracked_at(populated, fx):
    rows = q(populated, "SELECT video_id, track_key, n_objects FROM latest_tracks ORDER BY video_id")
    assert rows == [(fx.VIDEO_A, fx.NEW_TRACK, 3), (fx.VIDEO_B, fx.NEW_TRACK, 1)]
    assert q(populated, "SELECT count(*) FROM latest_objects")[0][0] == 4
    assert q(populated, "SELECT DISTINCT track_key FROM latest_object_frames") == [(fx.NEW_TRACK,)]
    # a later re-tracking of video A becomes the latest, without tracking again the others
    later = fx.T0.replace(hour=20)
    populated.write_unit("objects", fx.VIDEO_A, "track-z", table_from_records(
        "objects", [fx.object_row(fx.VIDEO_A, "track-z", 9, 0.0, 1.0, "white", 0.0, tracked_at=later)]))
    assert q(populated, f"SELECT track_key FROM latest_tracks WHERE video_id = '{fx.VIDEO_A}'") == [(fx.NEW_TRACK,)]
    populated.refresh_views()  # small tables are copied into the views file: new units appear at a refresh
    rows = q(populated, f"SELECT track_key, n_objects FROM latest_tracks WHERE video_id = '{fx.VIDEO_A}'")
    assert rows == [("track-z", 1)]


def test_latest_descriptions_and_object_captions(populated, fx):
    rows = q(populated, f"""SELECT object_ids, task, answer FROM latest_descriptions
                            WHERE video_id = '{fx.VIDEO_A}' ORDER BY task, object_ids""")
    assert rows == [([1], "caption", "A red car driving left."), ([1, 2], "qa", "Yes.")]
    rows = q(populated, "SELECT video_id, object_id, caption FROM object_captions ORDER BY video_id, object_id")
    assert rows == [(fx.VIDEO_A, 1, "A red car driving left."), (fx.VIDEO_A, 2, None), (fx.VIDEO_A, 3, None),
                    (fx.VIDEO_B, 1, "A red bus.")]


def test_reader_never_fails_while_views_are_refreshed(populated, fx, tmp_path):
    """A reader process queries in a loop while this process refreshes the views 25 times."""
    stop = tmp_path / "stop"
    script = textwrap.dedent(f"""
        import json, os, time
        from storage.query import run_query
        n, errors = 0, []
        while not os.path.exists({str(stop)!r}) or n < 5:
            try:
                cols, rows = run_query({populated.db_path!r}, "SELECT count(*) FROM object_captions")
                assert rows[0][0] >= 4, rows
                n += 1
            except Exception as exc:  # noqa: BLE001 - the test reports every kind
                errors.append(f"{{type(exc).__name__}}: {{exc}}")
        print(json.dumps({{"queries": n, "errors": errors[:5], "n_errors": len(errors)}}))
    """)
    reader = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # let the reader start querying
        for i in range(25):
            if i % 5 == 0:
                populated.write_unit("objects", fx.VIDEO_B, f"extra-{i}", table_from_records(
                    "objects", [fx.object_row(fx.VIDEO_B, f"extra-{i}", 1, 0.0, 1.0, "red", 0.0)]))
            populated.refresh_views()
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["n_errors"] == 0, report["errors"]
    assert report["queries"] >= 5
    assert not [n for n in os.listdir(populated.root) if n.endswith(".partial")]
