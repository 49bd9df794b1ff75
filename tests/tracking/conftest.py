"""A ground-truth-driven segmenter and generated scenes for tracker tests."""

from __future__ import annotations

import hashlib

import motmetrics as mm
import numpy as np
import pytest

from pixelrefer_core.masks import decode_rle, mask_iou
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


class LabelledTruthSegmenter(TruthSegmenter):
    """Ground truth with concept labels: `discover_labelled` returns every visible object (missing each
    with probability `miss`) labelled with its concept, the label swapped for another concept with
    probability `wrong`; `batched=True` adds `discover_labelled_batch` (records the batch sizes)."""

    def __init__(self, frames, truth, concepts, miss=0.0, wrong=0.0, seed=0, batched=False, swap_on=()):
        super().__init__(frames, truth, miss=miss, seed=seed)
        self.concepts = concepts  # object index -> concept
        self.wrong = wrong
        self.swap_on = set(swap_on)  # frames on which every label is the wrong one
        self.names = sorted(set(concepts.values()))
        self.batches: list[int] = []
        if batched:
            self.discover_labelled_batch = self._batch

    def discover_labelled(self, frame):
        from pixelrefer_core.tracking import Detection

        out = []
        for k, m in self.truth[self._f(frame)].items():
            if self.rng.random() < self.miss:
                continue
            label = self.concepts[k]
            if self.rng.random() < self.wrong or self._f(frame) in self.swap_on:
                label = next(n for n in self.names if n != label)
            out.append(Detection(m, 0.9, label))
        return out

    def _batch(self, frames):
        self.batches.append(len(frames))
        return [self.discover_labelled(f) for f in frames]


def concept_scene(num_frames: int = 60):
    """Cars (squares) and people (discs): two cross, one is occluded, one enters late, one leaves."""
    objects = [
        SyntheticObject("red", "rect", 26, (300, 60), (-5, 0)),  # car, behind the occluder ~frames 22-30
        SyntheticObject("green", "circle", 28, (30, 150), (5, 0)),  # person, crosses the blue car
        SyntheticObject("blue", "rect", 24, (290, 160), (-5, -0.3)),  # car
        SyntheticObject("yellow", "circle", 24, (160, 225), (0.5, -3), enter_frame=25),  # person, late
        SyntheticObject("purple", "circle", 20, (60, 30), (-4, -1)),  # person, leaves early
    ]
    concepts = {0: "car", 1: "person", 2: "car", 3: "person", 4: "person"}
    occluders = [SyntheticObject((90, 90, 90), "rect", 44, (170, 60), (0, 0))]
    frames, truth = render_scene(objects, num_frames, occluders=occluders, seed=4)
    return frames, truth, concepts


@pytest.fixture(scope="module")
def labelled_scene():
    return concept_scene()


@pytest.fixture
def labelled_segmenter_factory():
    return LabelledTruthSegmenter


def _id_metrics(tracks, truth):
    acc = mm.MOTAccumulator(auto_id=True)
    by_frame: dict[int, dict[int, np.ndarray]] = {}
    for tr in tracks:
        for r in tr.frames:
            by_frame.setdefault(r.frame_idx, {})[tr.object_id] = decode_rle(r.mask_rle, r.mask_h, r.mask_w)
    for f, gt in enumerate(truth):
        hyp = by_frame.get(f, {})
        g_ids, h_ids = list(gt), list(hyp)
        if g_ids and h_ids:
            dist = 1.0 - mask_iou(np.stack([gt[k] for k in g_ids]), np.stack([hyp[k] for k in h_ids]))
            dist[dist > 0.5] = np.nan
        else:
            dist = np.empty((len(g_ids), len(h_ids)))
        acc.update(g_ids, h_ids, dist)
    return mm.metrics.create().compute(acc, metrics=["idf1", "mota", "num_switches"], name="s")


@pytest.fixture
def id_metrics():
    """id_metrics(tracks, truth) -> motmetrics summary with idf1, mota, num_switches (mask IoU >= 0.5)."""
    return _id_metrics
