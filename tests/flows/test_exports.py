"""Exports other tools open: MOT files read back with motmetrics give the stored boxes exactly;
YouTube-VIS RLEs decoded with pycocotools equal the stored masks; --with-frames writes the frames the
documents name (decoded from the source videos)."""

from __future__ import annotations

import json
import os

import av
import motmetrics as mm
import numpy as np
import pyarrow.parquet as pq
import pytest
from pycocotools import mask as mask_utils

from flows.cli import main
from pixelrefer_core.render import decode_jpeg

from .report_store import TRACK_KEY, write_scene_store


@pytest.fixture
def scene_store(tmp_path):
    root = str(tmp_path / "store")
    return root, write_scene_store(root, str(tmp_path / "videos"))


def _stored(root, video_id):
    path = os.path.join(root, "object_frames", f"video_id={video_id}", f"{TRACK_KEY}.parquet")
    return pq.read_table(path).to_pylist()


def test_mot_round_trip_with_motmetrics(scene_store, tmp_path):
    root, scenes = scene_store
    out = str(tmp_path / "mot")
    assert main(["export", "--store", root, "--format", "mot", "--out", out]) == 0
    info = json.load(open(os.path.join(out, "seqinfo.json")))
    for s in scenes:
        seq = next(k for k, v in info.items() if v["video_id"] == s.video_id)
        df = mm.io.loadtxt(os.path.join(out, f"{seq}.txt"), fmt="mot15-2D")
        rows = _stored(root, s.video_id)
        assert len(df) == len(rows)
        for r in rows:
            got = df.loc[(r["frame_idx"] + 1, r["object_id"])]
            assert (got["X"], got["Y"]) == (r["x0"], r["y0"])
            assert (got["X"] + got["Width"], got["Y"] + got["Height"]) == (r["x1"], r["y1"])
            assert np.float32(got["Confidence"]) == np.float32(r["score"])


def test_youtube_vis_masks_decode_to_the_stored_masks(scene_store, tmp_path):
    root, scenes = scene_store
    out = str(tmp_path / "vis" / "vis.json")
    assert main(["export", "--store", root, "--format", "youtube-vis", "--out", out]) == 0
    doc = json.load(open(out))
    assert [c["name"] for c in doc["categories"]] == ["object"]
    for s in scenes:
        video = next(v for v in doc["videos"] if v["video_id"] == s.video_id)
        assert video["frame_indices"] == s.sampled() and video["length"] == len(video["file_names"])
        anns = [a for a in doc["annotations"] if a["video_id"] == video["id"]]
        assert sorted(a["object_id"] for a in anns) == sorted({o for per in s.masks for o in per})
        for a in anns:
            assert len(a["segmentations"]) == video["length"]
            for pos, f in enumerate(video["frame_indices"]):
                want = s.masks[f].get(a["object_id"])
                seg = a["segmentations"][pos]
                if want is None:
                    assert seg is None and a["bboxes"][pos] is None
                    continue
                # as the YouTube-VIS API's annToRLE: compressed counts go to decode as they are
                assert isinstance(seg["counts"], str) and seg["size"] == [120, 160]
                assert np.array_equal(mask_utils.decode(seg).astype(bool), want)
                assert a["areas"][pos] == int(want.sum())


def test_with_frames_writes_the_named_frames(scene_store, tmp_path):
    root, scenes = scene_store
    out = str(tmp_path / "vis" / "vis.json")
    assert main(["export", "--store", root, "--format", "youtube-vis", "--out", out, "--with-frames"]) == 0
    doc = json.load(open(out))
    images = os.path.join(tmp_path, "vis", "JPEGImages")
    for s in scenes:
        with av.open(s.path) as c:
            source = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        video = next(v for v in doc["videos"] if v["video_id"] == s.video_id)
        for name, f in zip(video["file_names"], video["frame_indices"], strict=True):
            frame = decode_jpeg(open(os.path.join(images, name), "rb").read())
            assert np.abs(frame.astype(float) - source[f]).mean() < 3
    coco = str(tmp_path / "coco" / "coco.json")
    assert main(["export", "--store", root, "--format", "coco-json", "--out", coco, "--with-frames"]) == 0
    for img in json.load(open(coco))["images"]:
        assert os.path.isfile(os.path.join(tmp_path, "coco", "JPEGImages", img["file_name"]))


def test_with_frames_bad_input(scene_store, tmp_path, capsys):
    root, scenes = scene_store
    assert main(["export", "--store", root, "--format", "mot", "--out", str(tmp_path / "m"), "--with-frames"]) == 2
    os.rename(scenes[0].path, scenes[0].path + ".moved")
    out = str(tmp_path / "vis.json")
    assert main(["export", "--store", root, "--format", "youtube-vis", "--out", out, "--with-frames"]) == 1
    assert "cannot write the frames of" in capsys.readouterr().err
    assert not os.path.exists(out)  # no document naming frames that are not there
