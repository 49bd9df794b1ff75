"""Tracking logic against ground truth: identities, entries/exits, occlusion, prompts, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from pixelrefer_core.masks import decode_rle, mask_box, mask_iou
from pixelrefer_core.tracking import Prompt, TrackerConfig, track_video

CFG = TrackerConfig(sample_fps=None, keyframe_every=4, chunk_size=6, max_missing_keyframes=4)


def _stream(frames, fps=10.0):
    for i, f in enumerate(frames):
        yield i, i / fps, f


def test_identity_quality_on_ground_truth(scene, truth_segmenter_factory, id_metrics):
    frames, truth = scene
    tracks = track_video(_stream(frames), truth_segmenter_factory(frames, truth), CFG)
    m = id_metrics(tracks, truth)
    assert m["idf1"].iloc[0] >= 0.95, m
    assert m["num_switches"].iloc[0] == 0
    assert len(tracks) == 5  # occluded red keeps its id; nothing duplicated


def test_identity_quality_with_missed_detections(scene, truth_segmenter_factory, id_metrics):
    frames, truth = scene
    tracks = track_video(_stream(frames), truth_segmenter_factory(frames, truth, miss=0.3), CFG)
    assert id_metrics(tracks, truth)["idf1"].iloc[0] >= 0.95


def test_late_entry_exit_and_timestamps(scene, truth_segmenter_factory):
    frames, truth = scene
    tracks = track_video(_stream(frames), truth_segmenter_factory(frames, truth), CFG)
    first_seen = {k: min(f for f, g in enumerate(truth) if k in g) for k in range(5)}
    last_seen = {k: max(f for f, g in enumerate(truth) if k in g) for k in range(5)}
    yellow = next(t for t in tracks if t.color == "yellow")
    # backward pass: the late object's frames before its discovery keyframe are kept
    assert yellow.first_frame == first_seen[3]
    purple = next(t for t in tracks if t.color == "purple")
    assert purple.last_frame == last_seen[4] and purple.last_frame < 20
    for tr in tracks:
        assert [r.frame_idx for r in tr.frames] == sorted({r.frame_idx for r in tr.frames})
        assert all(r.t == pytest.approx(r.frame_idx / 10.0) for r in tr.frames)
        r = tr.frames[len(tr.frames) // 2]
        assert r.box == tuple(float(v) for v in mask_box(decode_rle(r.mask_rle, r.mask_h, r.mask_w)))
    red = next(t for t in tracks if t.color == "red")
    assert red.direction_deg == pytest.approx(180.0, abs=5) and red.mean_speed_px_s > 0


def test_frame_filling_and_tiny_masks_are_dropped(scene, truth_segmenter_factory):
    frames, truth = scene
    seg = truth_segmenter_factory(frames, truth)
    whole = np.ones(frames[0].shape[:2], bool)
    speck = np.zeros_like(whole)
    speck[0, 0] = True
    base = seg.discover
    seg.discover = lambda f: base(f) + [whole, speck]
    tracks = track_video(_stream(frames), seg, CFG)
    area = whole.size
    assert all(r.area < 0.8 * area and r.area > 1 for t in tracks for r in t.frames)


def test_prompts_seed_tracks(scene, truth_segmenter_factory):
    frames, truth = scene
    seg = truth_segmenter_factory(frames, truth)
    seg.discover = lambda f: []  # only the prompt can create the track
    x0, y0, x1, y1 = mask_box(truth[10][1])
    tracks = track_video(_stream(frames), seg, CFG, prompts=[Prompt(frame_index=10, box=(x0, y0, x1, y1), object_id=7)])
    assert [(t.object_id, t.discovered_by) for t in tracks] == [(7, "prompt")]
    # the backward pass may extend the prompted object back to the previous keyframe (8)
    assert 8 <= tracks[0].first_frame <= 10 and tracks[0].color == "green"
    assert 10 in [r.frame_idx for r in tracks[0].frames] and tracks[0].last_frame == 59
    r = tracks[0].frames[5]
    assert mask_iou(decode_rle(r.mask_rle, r.mask_h, r.mask_w), truth[r.frame_idx][1])[0, 0] > 0.9


def test_a_prompt_on_an_already_tracked_object_adopts_its_track(scene, truth_segmenter_factory):
    frames, truth = scene
    auto = track_video(_stream(frames), truth_segmenter_factory(frames, truth), CFG)
    green_auto = next(t for t in auto if t.color == "green")
    x0, y0, x1, y1 = mask_box(truth[12][1])  # keyframe 12: green is tracked already
    tracks = track_video(_stream(frames), truth_segmenter_factory(frames, truth), CFG,
                         prompts=[Prompt(frame_index=12, box=(x0, y0, x1, y1), object_id=70)])
    assert len(tracks) == len(auto)  # no duplicate of the seeded object
    green = [t for t in tracks if t.color == "green"]
    assert [(t.object_id, t.discovered_by) for t in green] == [(70, "prompt")]
    assert green[0].first_frame == green_auto.first_frame  # its history from before the seed is kept


def test_memory_bounded_by_chunk(scene, truth_segmenter_factory):
    frames, truth = scene
    seg = truth_segmenter_factory(frames, truth)
    consumed = []

    def lazy():
        for i, f in enumerate(frames):
            consumed.append(i)
            yield i, i / 10.0, f

    import weakref

    alive: list = []

    class Frame(np.ndarray):
        pass

    def tracked():
        for i, t, f in lazy():
            v = f.view(Frame)
            alive.append(weakref.ref(v))
            live = sum(r() is not None for r in alive)
            assert live <= CFG.chunk_size + 1, f"{live} frames alive at frame {i}"
            yield i, t, v

    track_video(tracked(), seg, CFG)
    assert consumed == list(range(len(frames)))
    assert max(seg.calls) <= CFG.chunk_size
