"""What a user sees as current: the tracking asked for last (run A, run B, run A again), a newest tracking
that found nothing, and a video found under two names (stored, described and counted once)."""

from __future__ import annotations

import os
import shutil

from storage import Store
from storage.query import run_query


def _latest(store_root: str) -> dict[str, tuple[str, int]]:
    store = Store.open(store_root, create=False)
    _, rows = run_query(store.db_path, "SELECT video_id, track_key, n_objects FROM latest_tracks")
    return {vid: (key, n) for vid, key, n in rows}


def _keys(store_root: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for folder, _, files in os.walk(os.path.join(store_root, "objects")):
        for name in files:
            out.setdefault(folder.rsplit("video_id=", 1)[1], set()).add(name.removesuffix(".parquet"))
    return out


def test_rerunning_earlier_settings_makes_their_tracking_current_again(clean_run, archive, tmp_path, tiny_settings):
    from flows.archive import process_archive
    from flows.cli import main

    store = str(tmp_path / "store")
    shutil.copytree(clean_run[0], store)
    a = _latest(store)
    process_archive(tiny_settings(store, archive, sample_fps=4.0))  # run B: other settings, other key
    b = _latest(store)
    assert set(a) == set(b) and all(a[v][0] != b[v][0] for v in a)
    # run A again: every unit is done (nothing is redone), yet A is what the user asked for last
    assert main(["run", archive, "--store", store, "--profile", "tiny", "--segmenter", "motion", "--sample-fps", "6",
                 "--frames-per-object", "2", "--max-new-tokens", "4", "--batch-size", "4"]) == 0
    assert _latest(store) == a
    assert all(len(keys) == 2 for keys in _keys(store).values())  # both trackings stay in the store


def test_a_newest_tracking_that_found_nothing_is_current(clean_run, archive, tmp_path, tiny_settings):
    from flows.archive import process_archive

    store = str(tmp_path / "store")
    shutil.copytree(clean_run[0], store)
    # one sampled frame per second: too few for the motion segmenter's background model, so no object
    summary = process_archive(tiny_settings(store, archive, sample_fps=1.0))
    assert summary.objects == 0
    latest = _latest(store)
    assert latest and all(n == 0 for _, n in latest.values())
    _, rows = run_query(Store.open(store, create=False).db_path, "SELECT count(*) FROM latest_objects")
    assert rows == [(0,)]


def test_the_same_video_under_two_names_is_stored_described_and_counted_once(archive, tmp_path, tiny_settings,
                                                                              prefect_server):
    from flows.archive import process_archive

    copy = tmp_path / "archive"
    shutil.copytree(archive, copy)
    shutil.copy(copy / "a" / "left.mp4", copy / "a" / "left-copy.mp4")
    store = str(tmp_path / "store")
    summary = process_archive(tiny_settings(store, str(copy)))
    assert summary.paths_found == 4 and summary.paths_duplicate == 1 and summary.videos_found == 3
    assert summary.videos_done == 2
    catalog = Store.open(store, create=False).catalog
    assert len(catalog.units(stage="describe")) == 2 and len(catalog.units(stage="track")) == 2
    paths = {p.uri for p in catalog.video_paths()}
    assert {str(copy / "a" / "left.mp4"), str(copy / "a" / "left-copy.mp4")} <= paths
    _, rows = run_query(Store.open(store, create=False).db_path,
                        "SELECT count(DISTINCT uri), count(DISTINCT video_id) FROM video_paths")
    assert rows == [(4, 3)]  # every path is recorded: two names of one video, the other two files
