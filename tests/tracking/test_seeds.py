"""User seeds: checked before tracking, reported when they give nothing, and harmless when they fail."""

from __future__ import annotations

import numpy as np
import pytest

from pixelrefer_core.errors import PromptError
from pixelrefer_core.masks import mask_box
from pixelrefer_core.tracking import Prompt, SkippedPrompt, TrackerConfig, track_video, validate_prompt

CFG = TrackerConfig(sample_fps=None, keyframe_every=4, chunk_size=6, max_missing_keyframes=4)


def _stream(frames, fps=10.0):
    for i, f in enumerate(frames):
        yield i, i / fps, f


def _summary(tracks):
    return [(t.object_id, t.discovered_by, [(r.frame_idx, r.mask_rle, r.score) for r in t.frames]) for t in tracks]


def test_seeds_that_yield_no_mask_change_nothing_and_are_reported(scene, truth_segmenter_factory):
    frames, truth = scene
    plain = track_video(_stream(frames), truth_segmenter_factory(frames, truth), CFG)
    skipped: list[SkippedPrompt] = []
    empty_corner = (300, 0, 318, 10)  # background only: the segmenter finds nothing there
    seeds = [
        Prompt(frame_index=9, box=empty_corner, object_id=40),  # would force ids >= 41 for auto objects
        Prompt(frame_index=30, box=empty_corner),
        Prompt(frame_index=500, box=(10, 10, 50, 50), object_id=7),  # after the end of the video
    ]
    tracks = track_video(_stream(frames), truth_segmenter_factory(frames, truth), CFG, prompts=seeds,
                         on_prompt_skipped=skipped.append)
    assert _summary(tracks) == _summary(plain)  # same ids, same frames, same masks: no extra keyframe
    assert [t.object_id for t in tracks] == list(range(1, len(tracks) + 1))
    assert [(s.prompt.frame_index, s.frame_idx) for s in skipped] == [(9, 9), (30, 30), (500, None)]
    assert "no object" in skipped[0].reason and "ends before" in skipped[2].reason


def test_a_frame_filling_seed_is_reported_not_tracked(scene, truth_segmenter_factory):
    frames, truth = scene
    skipped: list[SkippedPrompt] = []
    whole = np.ones(frames[0].shape[:2], bool)
    tracks = track_video(_stream(frames), truth_segmenter_factory(frames, truth), CFG,
                         prompts=[Prompt(frame_index=5, mask=whole, object_id=9)], on_prompt_skipped=skipped.append)
    assert 9 not in [t.object_id for t in tracks]
    assert len(skipped) == 1 and "max_area_frac" in skipped[0].reason


class _ScoredTruth:
    """Ground truth that scores every mask propagated backwards in time `back_score`."""

    def __init__(self, base, back_score):
        self.base, self.back_score = base, back_score
        self.prompt_mask, self.discover = base.prompt_mask, base.discover

    def propagate_scored(self, frames, seeds):
        out = self.base.propagate(frames, seeds)
        backwards = len(frames) > 1 and self.base._f(frames[1]) < self.base._f(frames[0])
        score = self.back_score if backwards else 1.0
        return [{k: (m, score) for k, m in d.items()} for d in out]

    def propagate(self, frames, seeds):
        return self.base.propagate(frames, seeds)


@pytest.mark.parametrize(("back_score", "first"), [(0.0, 10), (0.3, 10), (0.9, 8)])
def test_backward_extension_of_a_seeded_object_is_thresholded(scene, truth_segmenter_factory, back_score, first):
    frames, truth = scene
    seg = truth_segmenter_factory(frames, truth)
    seg.discover = lambda f: []  # only the seed creates the track
    box = mask_box(truth[10][1])
    tracks = track_video(_stream(frames), _ScoredTruth(seg, back_score), CFG,
                         prompts=[Prompt(frame_index=10, box=box, object_id=7)])
    (tr,) = tracks
    assert tr.first_frame == first  # the seed (frame 10) ends the chunk that starts at keyframe 8
    assert all(r.score >= CFG.prompt_backward_min_score for r in tr.frames if r.frame_idx < 10)


def test_validate_prompt_refuses_what_cannot_apply():
    ok = [Prompt(frame_index=0, box=(0, 0, 320, 240)), Prompt(frame_index=59, points=[(10, 10), (300, 200)], labels=[1, 0]),
          Prompt(frame_index=3, mask=np.pad(np.ones((2, 2), bool), ((0, 238), (0, 318))))]
    for p in ok:
        validate_prompt(p, 320, 240, 60)
    bad = [
        (Prompt(frame_index=60, box=(0, 0, 10, 10)), "after its end"),
        (Prompt(frame_index=-1, box=(0, 0, 10, 10)), ">= 0"),
        (Prompt(frame_index=0, box=(300, 10, 330, 20)), "outside the 320x240 frame"),
        (Prompt(frame_index=0, box=(-5, 10, 30, 20)), "outside"),
        (Prompt(frame_index=0, box=(10, 10, 10, 20)), "empty"),
        (Prompt(frame_index=0, points=[(320, 10)]), "outside"),
        (Prompt(frame_index=0, points=[(5, 10)], labels=[0]), "at least one 1"),
        (Prompt(frame_index=0, points=[(5, 10)], labels=[1, 1]), "labels"),
        (Prompt(frame_index=0), "needs a box"),
        (Prompt(frame_index=0, mask=np.ones((10, 10), bool)), "240x320"),
        (Prompt(frame_index=0, box=(0, 0, 5, 5), object_id=0), "object id"),
    ]
    for p, msg in bad:
        with pytest.raises(PromptError, match=msg) as e:
            validate_prompt(p, 320, 240, 60)
        assert f"frame {p.frame_index}" in str(e.value)
