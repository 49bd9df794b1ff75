"""`pixelrefer report`: a static site built from the store alone (thumbnails from the store, clips linked
from the overlays folder), paginated, rebuilt atomically; the bad inputs a user can give."""

from __future__ import annotations

import os
import re

import pytest

from flows.cli import main
from flows.report.publish import MARKER
from pixelrefer_core.render import decode_jpeg
from storage import Store

from .report_store import tree_digest, write_scene_store


@pytest.fixture
def scene_store(tmp_path):
    root = str(tmp_path / "store")
    scenes = write_scene_store(root, str(tmp_path / "videos"))
    assert main(["thumbnails", "--store", root]) == 0
    return root, scenes


def _page(out, video_id):
    return open(os.path.join(out, "videos", f"{video_id}.html"), encoding="utf-8").read()


def test_report_pages_images_and_clips(scene_store, tmp_path, capsys):
    root, scenes = scene_store
    assert main(["render", "--store", root]) == 0  # default folder: <store>-overlays, where report looks
    before = tree_digest(root)
    out = str(tmp_path / "report")
    assert main(["report", "--store", root, "--out", out]) == 0
    assert f"open file://{out}/index.html" in capsys.readouterr().out
    assert tree_digest(root) == before  # the store is only read
    index = open(os.path.join(out, "index.html"), encoding="utf-8").read()
    assert "2 videos" in index and "3 objects" in index and "Run history" in index
    left = scenes[0]
    page = _page(out, left.video_id)
    # the overlay clip, linked relative to the page, and the link that plays it from the object's start
    clip = f"../../store-overlays/{left.video_id}.mp4"
    assert f'src="{clip}"' in page
    assert f'href="{clip}#t=0.60"' in page  # object 2 enters at frame 6, 10 fps
    assert os.path.isfile(os.path.normpath(os.path.join(out, "videos", clip)))
    # one timeline bar per object, coloured as in the overlay; captions and "not described yet"
    assert len(re.findall(r'class="bar" id="bar-\d+"', page)) == 2
    assert left.captions[1] in page and "not described yet" in page
    # images are the store's thumbnails, written as files, lazy-loaded
    crops = re.findall(r'<img loading="lazy" src="\.\./(img/[^"]+/\d+\.jpg)"', page)
    assert len(set(crops)) == 2
    for rel in set(crops):
        assert decode_jpeg(open(os.path.join(out, rel), "rb").read()).size > 0
    assert "<svg class=\"trajectories\"" in page and "<polyline" in page
    assert os.path.isfile(os.path.join(out, "static", "report.js"))
    assert "http://" not in index + page and "https://" not in index + page  # nothing from a network


def test_pagination_and_atomic_rebuild(scene_store, tmp_path):
    root, scenes = scene_store
    out = str(tmp_path / "report")
    assert main(["report", "--store", root, "--out", out, "--page-size", "1"]) == 0
    assert os.path.isfile(os.path.join(out, "index-2.html")) and not os.path.exists(os.path.join(out, "index-3.html"))
    inode = os.stat(out).st_ino
    open(os.path.join(out, "stale.txt"), "w").write("from the old report")
    assert main(["report", "--store", root, "--out", out]) == 0
    assert os.stat(out).st_ino != inode  # a new folder took the old one's place
    assert not os.path.exists(os.path.join(out, "stale.txt")) and not os.path.exists(os.path.join(out, "index-2.html"))
    assert os.path.isfile(os.path.join(out, MARKER))
    assert [e for e in os.listdir(tmp_path) if e.startswith(".report")] == []  # no build folder left


def test_moved_source_keeps_thumbnails_and_says_why_there_is_no_overlay(scene_store, tmp_path):
    root, scenes = scene_store
    os.rename(scenes[0].path, scenes[0].path + ".moved")
    out = str(tmp_path / "report")
    assert main(["report", "--store", root, "--out", out]) == 0
    page = _page(out, scenes[0].video_id)
    assert "Overlay clip unavailable: source video unavailable" in page and "moved or deleted" in page
    assert len(re.findall(r'src="\.\./img/[^"]+/\d+\.jpg"', page)) >= 2
    other = _page(out, scenes[1].video_id)
    assert "not rendered yet: pixelrefer render --store" in other


def test_store_without_descriptions_and_store_without_objects(tmp_path):
    root = str(tmp_path / "store")
    scenes = write_scene_store(root, str(tmp_path / "videos"), describe=False, names=("up.mp4",))
    out = str(tmp_path / "report")
    assert main(["report", "--store", root, "--out", out]) == 0
    page = _page(out, scenes[0].video_id)
    assert "not described yet" in page and "Thumbnails not made yet" in page
    empty = str(tmp_path / "empty")
    Store.open(empty).refresh_views()
    assert main(["report", "--store", empty, "--out", str(tmp_path / "r2")]) == 0
    assert "No videos in this store yet" in open(os.path.join(tmp_path, "r2", "index.html")).read()


def test_where_narrows_and_bad_where_is_refused(scene_store, tmp_path, capsys):
    root, scenes = scene_store
    out = str(tmp_path / "report")
    assert main(["report", "--store", root, "--out", out, "--where", "object_id = 2"]) == 0
    index = open(os.path.join(out, "index.html")).read()
    assert "1 video with matching objects (of 2)" in index
    assert len(re.findall(r'class="bar" id="bar-\d+"', _page(out, scenes[0].video_id))) == 1
    for bad in ("1 = 1; DROP TABLE objects", "object_id IN (SELECT 1)", "true -- comment", "no_such_column > 1"):
        assert main(["report", "--store", root, "--out", str(tmp_path / "r3"), "--where", bad]) == 2
        assert "is not a valid predicate" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "r3")


def test_output_folder_that_is_a_file_or_holds_other_files(scene_store, tmp_path, capsys):
    root, _ = scene_store
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert main(["report", "--store", root, "--out", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me too")
    assert main(["report", "--store", root, "--out", str(folder)]) == 2
    assert "holds other files" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "keep me too" and afile.read_text() == "keep me"
    assert main(["report", "--store", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
