"""Inputs the pipeline takes in stride: a 16x16 video, a video whose second half is gone, a dangling
symlink, and seeds that cannot apply (outside the frame, after the end, matching no video)."""

from __future__ import annotations

import os

import pytest

from flows.demo_archive import TEST_SCENES, make_archive
from pixelrefer_core.synthetic import SyntheticObject, render_scene, write_video
from storage import Store


@pytest.fixture(scope="module")
def odd_archive(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("odd")
    make_archive(str(folder), TEST_SCENES[1:], corrupt=False)  # b/up.mp4: a normal video
    frames, _ = render_scene([SyntheticObject("red", "rect", 6, (4, 8), (0.3, 0))], 30, width=16, height=16, seed=0)
    write_video(folder / "tiny16.mp4", frames, fps=10.0)
    frames, _ = render_scene([SyntheticObject("blue", "circle", 18, (20, 60), (3.0, 0))], 48, width=160, height=120,
                             seed=7)
    write_video(folder / "whole.mp4", frames, fps=12.0)
    data = (folder / "whole.mp4").read_bytes()
    (folder / "half.mp4").write_bytes(data[: len(data) // 2])
    os.remove(folder / "whole.mp4")
    os.symlink(folder / "gone.mp4", folder / "dangling.mp4")
    return str(folder)


def test_small_and_half_truncated_videos_are_processed_and_a_dangling_link_is_skipped(odd_archive, tmp_path,
                                                                                      tiny_settings, prefect_server):
    from flows.archive import process_archive
    from flows.commands.status import status_text

    store = str(tmp_path / "store")
    summary = process_archive(tiny_settings(store, odd_archive))
    assert summary.videos_found == 3 and summary.videos_failed == 0 and summary.videos_partial == 1
    (skipped,) = summary.failures
    assert skipped.stage == "discover" and skipped.who.endswith("dangling.mp4") and "gone.mp4" in skipped.reason
    opened = Store.open(store, create=False)
    from storage.query import run_query

    _, rows = run_query(opened.db_path, "SELECT regexp_extract(uri, '[^/]+$'), width, num_frames, decoded_frames, "
                                        "partial_reason IS NOT NULL FROM videos ORDER BY 1")
    by_name = {r[0]: r[1:] for r in rows}
    assert by_name["tiny16.mp4"][:2] == (16, 30) and not by_name["tiny16.mp4"][3]
    width, n, decoded, partial = by_name["half.mp4"]
    assert width == 160 and 0 < n < 48 and decoded == n and partial
    assert {u.state for u in opened.catalog.units(stage="track")} == {"done"}
    text = status_text(opened)
    assert "partial videos (1" in text and "half.mp4" in text


@pytest.mark.parametrize(
    "seed, says",
    [
        ("- video: up.mp4\n  at: 1\n  box: [500, 500, 540, 540]\n", "outside"),
        ("- video: up.mp4\n  at: '10:00'\n  box: [56, 57, 84, 85]\n", "after"),
    ],
    ids=["box-outside-frame", "after-the-end"],
)
def test_a_seed_that_cannot_apply_fails_that_videos_tracking_with_the_reason(odd_archive, tmp_path, tiny_settings,
                                                                              prefect_server, seed, says):
    from flows.archive import process_archive

    seeds = tmp_path / "seeds.yaml"
    seeds.write_text(seed)
    store = str(tmp_path / "store")
    summary = process_archive(tiny_settings(store, odd_archive, seeds_file=str(seeds)))
    (failure,) = [f for f in summary.failures if f.stage == "track"]
    assert failure.who.endswith("up.mp4") and says in failure.reason
    catalog = Store.open(store, create=False).catalog
    failed = catalog.failures("track")
    assert len(failed) == 1 and not failed[0].retryable  # the same seeds fail the same way: not retried
    assert {u.state for u in catalog.units(stage="track") if u.video_id != failed[0].video_id} == {"done"}


def test_a_seed_matching_no_video_and_one_yielding_no_mask_are_reported(odd_archive, tmp_path, tiny_settings,
                                                                       prefect_server):
    from flows.archive import process_archive

    seeds = tmp_path / "seeds.yaml"
    # the second seed sits on empty background at the first frame, where the motion model finds nothing
    seeds.write_text("- video: nowhere/*.mp4\n  at: 1\n  box: [0, 0, 8, 8]\n"
                     "- video: up.mp4\n  frame: 0\n  points: [[5, 5]]\n")
    summary = process_archive(tiny_settings(str(tmp_path / "store"), odd_archive, seeds_file=str(seeds)))
    notes = "\n".join(summary.notes)
    assert "'nowhere/*.mp4' matches no video" in notes
    assert "seed at frame 0 on" in notes and "up.mp4" in notes and "ignored" in notes
