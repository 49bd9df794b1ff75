"""`pixelrefer render`: an H.264 clip per video from the source and the stored masks (decoded here with
PyAV against the stored masks), idempotent, skipping moved sources with the reason, never writing the store."""

from __future__ import annotations

import json
import os

import av
import numpy as np
import pytest
from scipy.ndimage import binary_dilation, binary_erosion

from flows.cli import main
from pixelrefer_core.render import object_color

from .report_store import tree_digest, write_scene_store

ALPHA = 0.45


@pytest.fixture
def scene_store(tmp_path):
    root = str(tmp_path / "store")
    return root, write_scene_store(root, str(tmp_path / "videos"))


def _decode(path):
    with av.open(path) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_clip_shows_the_stored_masks_and_leaves_the_store_alone(scene_store, tmp_path, capsys):
    root, scenes = scene_store
    before = tree_digest(root)
    out = str(tmp_path / "clips")
    assert main(["render", "--store", root, "--out", out]) == 0
    assert tree_digest(root) == before  # nothing in the store changed
    for s in scenes:
        frames = _decode(os.path.join(out, f"{s.video_id}.mp4"))
        with av.open(s.path) as c:
            source = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(frames) == len(s.frames) and frames[0].shape == (120, 160, 3)
        side = json.load(open(os.path.join(out, f"{s.video_id}.json")))
        assert side["frames"] == len(s.frames) and side["objects"] is None
        for f in range(len(frames)):
            held = f - f % s.step
            near = np.zeros((120, 160), bool)
            for oid, mask in s.masks[held].items():
                inner = binary_erosion(mask, iterations=3)
                if inner.sum() < 20:
                    continue
                expected = source[f][inner] * (1 - ALPHA) + np.array(object_color(oid)) * ALPHA
                assert np.abs(frames[f][inner] - expected).mean() < 12, (s.name, f, oid)
                near |= mask
            far = ~binary_dilation(near, iterations=22)
            far[:75] = False  # the objects and their labels stay in the upper half
            assert np.abs(frames[f][far].astype(float) - source[f][far]).mean() < 3, (s.name, f)
    capsys.readouterr()
    assert main(["render", "--store", root, "--out", out]) == 0
    assert capsys.readouterr().out.count("up to date") == 2


def test_objects_and_max_side(scene_store, tmp_path):
    root, scenes = scene_store
    out = str(tmp_path / "clips")
    left = scenes[0]
    assert main(["render", "--store", root, "--out", out, "--video", "left*", "--objects", "2",
                 "--max-side", "80"]) == 0
    assert not os.path.exists(os.path.join(out, f"{scenes[1].video_id}.mp4"))
    frames = _decode(os.path.join(out, f"{left.video_id}.mp4"))
    assert frames[0].shape == (60, 80, 3)
    side = json.load(open(os.path.join(out, f"{left.video_id}.json")))
    assert side["objects"] == [2] and side["max_side"] == 80


def test_moved_source_is_skipped_with_the_reason(scene_store, tmp_path, capsys):
    root, scenes = scene_store
    os.rename(scenes[0].path, scenes[0].path + ".moved")
    out = str(tmp_path / "clips")
    assert main(["render", "--store", root, "--out", out]) == 0
    text = capsys.readouterr().out
    assert f"{scenes[0].path}: skipped: source video unavailable" in text and "moved or deleted" in text
    assert not os.path.exists(os.path.join(out, f"{scenes[0].video_id}.mp4"))
    assert os.path.exists(os.path.join(out, f"{scenes[1].video_id}.mp4"))


def test_bad_input(scene_store, tmp_path, capsys):
    root, _ = scene_store
    assert main(["render", "--store", root, "--video", "nothing-like-this"]) == 2
    assert "matches no video" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["render", "--store", root, "--out", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["render", "--store", root, "--objects", "1,x"]) == 2
    assert main(["render", "--store", str(tmp_path / "nowhere")]) == 2
