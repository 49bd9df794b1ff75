"""Concept (labelled) discovery through the tracker: identities as with unlabelled discovery, labels by
majority, and batched keyframe detection giving the same result as one keyframe at a time."""

from __future__ import annotations

import numpy as np
import pytest

from pixelrefer_core.masks import decode_rle, mask_iou
from pixelrefer_core.tracking import TrackerConfig, track_video


def _stream(frames, fps=10.0):
    for i, f in enumerate(frames):
        yield i, i / fps, f


CFG = TrackerConfig(sample_fps=None, keyframe_every=4, chunk_size=9, max_missing_keyframes=4)


def _gt_object(track, truth):
    """The ground-truth object index a track follows (most frames with mask IoU > 0.5)."""
    votes: dict[int, int] = {}
    for r in track.frames:
        m = decode_rle(r.mask_rle, r.mask_h, r.mask_w)
        for k, g in truth[r.frame_idx].items():
            if mask_iou(m, g)[0, 0] > 0.5:
                votes[k] = votes.get(k, 0) + 1
    return max(votes, key=votes.get)


@pytest.mark.parametrize(("miss", "wrong"), [(0.0, 0.0), (0.2, 0.1)])
def test_labelled_discovery_keeps_identities_and_labels(
    labelled_scene, labelled_segmenter_factory, id_metrics, miss, wrong
):
    frames, truth, concepts = labelled_scene
    seg = labelled_segmenter_factory(frames, truth, concepts, miss=miss, wrong=wrong, seed=1)
    tracks = track_video(_stream(frames), seg, CFG)
    m = id_metrics(tracks, truth)
    assert m["idf1"].iloc[0] >= 0.95, m
    assert m["num_switches"].iloc[0] == 0
    assert len(tracks) == 5
    for tr in tracks:
        assert tr.label == concepts[_gt_object(tr, truth)], (tr.object_id, tr.label)
        assert tr.label_score == pytest.approx(0.9)
    late = next(t for t in tracks if _gt_object(t, truth) == 3)
    assert late.first_frame == min(f for f, g in enumerate(truth) if 3 in g)  # backward pass for late entrants


def test_the_label_is_the_majority_not_the_first_detection(labelled_scene, labelled_segmenter_factory):
    frames, truth, concepts = labelled_scene
    seg = labelled_segmenter_factory(frames, truth, concepts, swap_on={0, 28})  # first votes all wrong
    tracks = track_video(_stream(frames), seg, CFG)
    assert len(tracks) == 5
    assert all(tr.label == concepts[_gt_object(tr, truth)] for tr in tracks)


def test_unlabelled_discovery_gives_no_label(scene, truth_segmenter_factory):
    frames, truth = scene
    tracks = track_video(_stream(frames), truth_segmenter_factory(frames, truth), CFG)
    assert tracks and all(t.label is None and t.label_score is None for t in tracks)


def test_batched_keyframe_detection_gives_the_same_tracks(labelled_scene, labelled_segmenter_factory):
    frames, truth, concepts = labelled_scene
    one = track_video(_stream(frames), labelled_segmenter_factory(frames, truth, concepts, miss=0.2, seed=2), CFG)
    seg = labelled_segmenter_factory(frames, truth, concepts, miss=0.2, seed=2, batched=True)
    many = track_video(_stream(frames), seg, CFG)
    assert max(seg.batches) == 2  # keyframe_every 4 in windows of 8 new frames
    summary = [[(t.object_id, t.label, [(r.frame_idx, r.mask_rle) for r in t.frames]) for t in tr] for tr in (one, many)]
    assert summary[0] == summary[1]


def test_a_lost_object_is_not_revived_by_a_detection_of_another_concept(labelled_segmenter_factory):
    from pixelrefer_core.synthetic import SyntheticObject, render_scene

    # a car passes behind an occluder; while it is hidden a person appears where the car would be
    objs = [SyntheticObject("red", "rect", 24, (40, 120), (6, 0), exit_frame=14),
            SyntheticObject("green", "circle", 24, (112, 120), (6, 0), enter_frame=14)]
    frames, truth = render_scene(objs, 30, seed=0)
    seg = labelled_segmenter_factory(frames, truth, {0: "car", 1: "person"})
    tracks = track_video(_stream(frames), seg, TrackerConfig(sample_fps=None, keyframe_every=4, chunk_size=6, reid_gate=3.0))
    assert sorted(t.label for t in tracks) == ["car", "person"]
    assert all(np.all(np.diff([r.frame_idx for r in t.frames]) > 0) for t in tracks)
