"""`pixelrefer export` (csv, parquet, coco-json) of a hand-made store whose rows the tests know."""

import csv
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from pycocotools import mask as mask_utils

from flows.cli import main
from storage import StoreError
from storage.export import export_store


def test_csv_and_parquet_export_latest_tracking(populated, fx, tmp_path):
    out = export_store(populated, "parquet", tmp_path / "pq")
    assert sorted(os.listdir(out)) == ["descriptions.parquet", "object_frames.parquet", "objects.parquet",
                                       "videos.parquet"]
    frames = pq.read_table(os.path.join(out, "object_frames.parquet"))
    assert set(frames.column("track_key").to_pylist()) == {fx.NEW_TRACK}
    assert frames.num_rows == 10
    out = export_store(populated, "csv", tmp_path / "csv", video_id=fx.VIDEO_A)
    with open(os.path.join(out, "descriptions.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert {r["video_id"] for r in rows} == {fx.VIDEO_A} and len(rows) == 3
    assert sorted(json.loads(r["object_ids"]) for r in rows) == [[1], [1], [1, 2]]
    export_store(populated, "csv", tmp_path / "csv", all_tracks=True)  # replaces the folder
    with open(os.path.join(out, "objects.csv")) as fh:
        assert len(list(csv.DictReader(fh))) == 5
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_coco_json_masks_decode_back(populated, fx, tmp_path):
    path = export_store(populated, "coco-json", tmp_path / "coco.json", video_id=fx.VIDEO_A)
    doc = json.loads(open(path).read())
    assert [v["video_id"] for v in doc["videos"]] == [fx.VIDEO_A]
    assert len(doc["images"]) == 5 and len(doc["annotations"]) == 8
    images = {im["id"]: im for im in doc["images"]}
    tracks = {t["id"]: t for t in doc["tracks"]}
    for ann in doc["annotations"]:
        im = images[ann["image_id"]]
        track = tracks[ann["track_id"]]
        assert track["object_id"] == ann["object_id"]
        mask = mask_utils.decode(ann["segmentation"]).astype(bool)
        assert mask.shape == (fx.H, fx.W) == (im["height"], im["width"])
        x, y, w, h = ann["bbox"]
        np.testing.assert_array_equal(mask, fx.box_mask(int(x), int(y), int(x + w), int(y + h)))
        assert ann["area"] == int(mask.sum()) == w * h
        assert im["timestamp_s"] == pytest.approx(im["frame_index"] / 10.0)
        assert im["file_name"] == f"/videos/cam3.mp4#frame={im['frame_index']}"
    first = next(a for a in doc["annotations"] if a["object_id"] == 1 and images[a["image_id"]]["frame_index"] == 0)
    assert first["bbox"] == [20.0, 5.0, 4.0, 3.0]
    captions = {t["object_id"]: t["caption"] for t in doc["tracks"]}
    assert captions == {1: "A red car driving left.", 2: None, 3: None}


def test_export_unknown_video_and_format(populated, tmp_path):
    with pytest.raises(StoreError, match="no video 'zzz'"):
        export_store(populated, "csv", tmp_path / "x", video_id="zzz")
    with pytest.raises(StoreError, match="unknown export format"):
        export_store(populated, "xml", tmp_path / "x")
    assert not os.path.exists(tmp_path / "x")


def test_cli_query_formats_and_exit_codes(populated, capsys):
    root = populated.root
    assert main(["query", "--store", root, "--format", "json",
                 "SELECT object_id, color FROM latest_objects ORDER BY video_id, object_id"]) == 0
    assert json.loads(capsys.readouterr().out)[0] == {"object_id": 1, "color": "red"}
    assert main(["query", "--store", root, "--format", "csv", "SELECT 1 AS a"]) == 0
    assert capsys.readouterr().out == "a\n1\n"
    assert main(["query", "--store", root, "--file", "sql/object_timeline.sql"]) == 0
    assert "(4 rows)" in capsys.readouterr().out
    assert main(["query", "--store", root, "DELETE FROM objects"]) == 3
    err = capsys.readouterr().err
    assert "refused DELETE statement" in err and "Traceback" not in err
    assert main(["query", "--store", root, "SELEC 1"]) == 2
    err = capsys.readouterr().err
    assert "SQL error" in err and "syntax error" in err and "Traceback" not in err
    assert main(["query", "--store", root]) == 2
    assert "exactly one of" in capsys.readouterr().err
    assert main(["query", "--store", root + "-missing", "SELECT 1"]) == 1
    assert "no store at" in capsys.readouterr().err


def test_cli_query_refresh_makes_views(store, fx, capsys):
    assert main(["query", "--store", store.root, "SELECT 1"]) == 1
    assert "no views database" in capsys.readouterr().err
    fx.populate(store)
    assert main(["query", "--store", store.root, "--refresh", "SELECT count(*) AS n FROM objects"]) == 0
    assert capsys.readouterr().out.splitlines()[2].strip() == "5"


def test_cli_export(populated, fx, tmp_path, capsys):
    out = tmp_path / "one.json"
    assert main(["export", "--store", populated.root, "--format", "coco-json", "--out", str(out),
                 "--video", fx.VIDEO_B]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert len(json.loads(out.read_text())["annotations"]) == 2
    assert main(["export", "--store", populated.root, "--format", "csv", "--out", str(tmp_path / "c"),
                 "--video", "nope"]) == 1
    err = capsys.readouterr().err
    assert "no video 'nope'" in err and "Traceback" not in err
    assert main(["export", "--store", str(tmp_path / "absent"), "--format", "csv", "--out", "x"]) == 1
