"""`pixelrefer thumbnails`: every tracked object gets its best frame's crop and reduced frame in the store
(object_thumbnails, a view any DuckDB client reads), idempotently and resumably; a video whose source is
gone is skipped with the reason and done once the file is back."""

from __future__ import annotations

import os

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from flows.cli import main
from pixelrefer_core.inference import select_frames
from pixelrefer_core.render import decode_jpeg, object_color
from storage import Store

from .report_store import TRACK_KEY, write_scene_store


@pytest.fixture
def scene_store(tmp_path):
    root = str(tmp_path / "store")
    scenes = write_scene_store(root, str(tmp_path / "videos"))
    return root, scenes


def _unit(root, video_id):
    return os.path.join(root, "object_thumbnails", f"video_id={video_id}", f"{TRACK_KEY}.parquet")


def test_thumbnails_of_every_object_from_its_best_frame(scene_store, capsys):
    root, scenes = scene_store
    assert main(["thumbnails", "--store", root]) == 0
    assert "2 tracking(s) done (3 objects)" in capsys.readouterr().out
    for s in scenes:
        rows = {r["object_id"]: r for r in pq.read_table(_unit(root, s.video_id)).to_pylist()}
        assert set(rows) == {oid for per in s.masks for oid in per}
        for oid, row in rows.items():
            seen = [f for f in s.sampled() if oid in s.masks[f]]
            scores = [0.5 + 0.01 * f for f in seen]  # as report_store wrote them
            areas = [int(s.masks[f][oid].sum()) for f in seen]
            assert row["frame_idx"] == select_frames(seen, scores, areas, k=1)[0]
            assert row["t"] == pytest.approx(row["frame_idx"] / s.fps)
            crop = decode_jpeg(row["crop_jpeg"])
            assert crop.shape == (row["crop_h"], row["crop_w"], 3)
            frame = decode_jpeg(row["frame_jpeg"])
            assert frame.shape == (row["frame_h"], row["frame_w"], 3) == (120, 160, 3)
            # the reduced frame is that frame of the video; the crop is its box with context
            assert np.abs(frame.astype(float) - s.frames[row["frame_idx"]]).mean() < 6
            x0, y0, x1, y1 = row["crop_x0"], row["crop_y0"], row["crop_x1"], row["crop_y1"]
            ys, xs = np.nonzero(s.masks[row["frame_idx"]][oid])
            assert x0 < xs.min() and xs.max() < x1 - 1 and y0 < ys.min() and ys.max() < y1 - 1
            # the outline in the object's colour is drawn on the crop
            dist = np.abs(crop.astype(int) - np.array(object_color(oid))).sum(axis=2)
            assert (dist < 60).sum() >= 20
    # a view of the store: plain DuckDB reads it (relative paths resolved against the store folder)
    con = duckdb.connect(os.path.join(root, "views.duckdb"), read_only=True)
    con.execute(f"SET file_search_path = '{root}'")
    n, size = con.execute("SELECT count(*), min(octet_length(crop_jpeg)) FROM object_thumbnails").fetchone()
    con.close()
    assert n == 3 and size > 300


def test_idempotent_and_resumable(scene_store, capsys):
    root, scenes = scene_store
    assert main(["thumbnails", "--store", root]) == 0
    first = {s.video_id: os.stat(_unit(root, s.video_id)).st_mtime_ns for s in scenes}
    capsys.readouterr()
    assert main(["thumbnails", "--store", root]) == 0
    assert "0 tracking(s) done (0 objects), 2 already done" in capsys.readouterr().out
    assert {s.video_id: os.stat(_unit(root, s.video_id)).st_mtime_ns for s in scenes} == first
    # a run that stopped after one video: the other unit is redone, the finished one is kept
    os.remove(_unit(root, scenes[1].video_id))
    assert main(["thumbnails", "--store", root]) == 0
    assert "1 tracking(s) done (1 objects), 1 already done" in capsys.readouterr().out
    assert os.stat(_unit(root, scenes[0].video_id)).st_mtime_ns == first[scenes[0].video_id]
    store = Store.open(root, create=False)
    assert store.catalog.unit_state("thumbnails", scenes[1].video_id, TRACK_KEY) == "done"
    runs = [r for r in store.catalog.runs() if r.kind == "thumbnails"]
    store.close()
    assert len(runs) == 3 and all(r.status == "ok" for r in runs)


def test_source_gone_is_skipped_with_the_reason_then_done_when_back(scene_store, capsys):
    root, scenes = scene_store
    moved = scenes[0].path + ".moved"
    os.rename(scenes[0].path, moved)
    assert main(["thumbnails", "--store", root]) == 0
    out = capsys.readouterr().out
    assert "1 skipped (source gone)" in out and "not found (moved or deleted)" in out
    assert not os.path.exists(_unit(root, scenes[0].video_id))
    store = Store.open(root, create=False)
    assert store.catalog.unit_state("thumbnails", scenes[0].video_id, TRACK_KEY) is None  # not a failure
    store.close()
    os.rename(moved, scenes[0].path)
    assert main(["thumbnails", "--store", root]) == 0
    assert os.path.exists(_unit(root, scenes[0].video_id))


def test_bad_arguments(tmp_path, scene_store, capsys):
    root, _ = scene_store
    assert main(["thumbnails", "--store", str(tmp_path / "nowhere")]) == 2
    assert main(["thumbnails", "--store", root, "--video", "no-such-*"]) == 2
    assert "matches no video" in capsys.readouterr().err
