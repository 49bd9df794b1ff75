"""A ground-truth-driven segmenter and generated scenes for tracker tests."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pixelrefer_core.masks import mask_iou
from pixelrefer_core.synthetic import SyntheticObject, render_scene


class TruthSegmenter:
    """Returns the scene's ground-truth masks: `discover` all visible objects (missing each with
    probability `miss`), `propagate` the GT object best matching each seed. Frames are recognised by
    hashing their bytes. Records how many frames each call received."""

    segmenter_id = "truth"

    def __init__(self, frames, truth, miss: float = 0.0, seed: int = 0):
        self.index = {hashlib.sha1(f.tobytes()).hexdigest(): i for i, f in enumerate(frames)}
        self.truth = truth
        self.miss = miss
        self.rng = np.random.default_rng(seed)
        self.calls: list[int] = []

    def _f(self, frame) -> int:
        return self.index[hashlib.sha1(frame.tobytes()).hexdigest()]

    def discover(self, frame):
        return [m for m in self.truth[self._f(frame)].values() if self.rng.random() >= self.miss]

    def prompt_mask(self, frame, box=None, points=None, labels=None):
        """The ground-truth object covering most of `box` (None when the box holds no object)."""
        gt = self.truth[self._f(frame)]
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        best, cover = None, 0
        for m in gt.values():
            c = int(m[y0:y1, x0:x1].sum())
            if c > cover:
                best, cover = m, c
        return best

    def propagate(self, frames, seeds):
        self.calls.append(len(frames))
        f0 = self._f(frames[0])
        gt0 = self.truth[f0]
        link = {}
        for oid, m in seeds.items():
            if gt0:
                keys = list(gt0)
                iou = mask_iou(m[None], np.stack([gt0[k] for k in keys]))[0]
                if iou.max() > 0.3:
                    link[oid] = keys[int(iou.argmax())]
        out = [dict(seeds)]
        for fr in frames[1:]:
            gt = self.truth[self._f(fr)]
            out.append({oid: gt[g] for oid, g in link.items() if g in gt})
        return out


def crossing_scene(num_frames: int = 60):
    """Red moves left behind an occluder (hidden ~8 frames), green and blue cross, yellow enters late,
    purple leaves the frame early."""
    objects = [
        SyntheticObject("red", "rect", 26, (300, 60), (-5, 0)),
        SyntheticObject("green", "circle", 28, (30, 150), (5, 0)),
        SyntheticObject("blue", "rect", 24, (290, 170), (-5, -0.5)),
        SyntheticObject("yellow", "circle", 24, (160, 225), (0.5, -3), enter_frame=25),
        SyntheticObject("purple", "rect", 20, (60, 30), (-4, -1)),
    ]
    occluders = [SyntheticObject((90, 90, 90), "rect", 44, (170, 60), (0, 0))]
    return render_scene(objects, num_frames, occluders=occluders, seed=3)


@pytest.fixture(scope="module")
def scene():
    return crossing_scene()


@pytest.fixture
def truth_segmenter_factory():
    return TruthSegmenter
