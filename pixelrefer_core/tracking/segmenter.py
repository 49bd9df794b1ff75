"""The contract between the tracker and a segmentation model, and helpers that use its optional parts.

Required: `discover` and `propagate` (below). Optional, used when present:
- `segmenter_id: str` (kind + checkpoint id + options that change results; part of the track_key),
- `discover_labelled(frame) -> list[Detection]` (concept discovery: each detection carries its mask,
  score and concept `label`; preferred over the two below),
- `discover_labelled_batch(frames) -> list[list[Detection]]` (the same for several keyframes at once;
  the tracker calls it with the keyframes of a window when present),
- `discover_scored(frame) -> list[(mask, score)]` and
  `propagate_scored(frames, seeds) -> list[dict[id, (mask, score)]]` (scores in [0, 1]; without them
  every mask scores 1.0),
- `prompt_mask(frame, box=None, points=None, labels=None) -> mask | None` (user seeds; without it a box
  becomes its rectangle and points-only prompts are refused). It must not change the segmenter's state
  (a seed that yields no mask must leave the tracking as if it had not been given),
- `joint_propagation: bool` (objects compete for pixels: the backward pass seeds every object).

Segmenters decide what is on a frame; the tracker alone decides identities (association,
re-identification, retirement): a segmenter never returns ids of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from pixelrefer_core.errors import PromptError
from pixelrefer_core.tracking.types import Detection


@runtime_checkable
class Segmenter(Protocol):
    def discover(self, frame: np.ndarray) -> list[np.ndarray]:
        """Candidate object masks (HxW bool) on one RGB frame (HxWx3 uint8)."""
        ...

    def propagate(
        self, frames: Sequence[np.ndarray], seeds: Mapping[int, np.ndarray]
    ) -> list[dict[int, np.ndarray]]:
        """Masks for each seeded object id on every frame; seeds are masks on frames[0].
        Returns one dict per frame (frames[0] included); an id may be absent where the object is gone."""
        ...


def discover_detections(seg: Segmenter, frame: np.ndarray) -> list[Detection]:
    """The segmenter's detections on `frame`: labelled when it offers `discover_labelled`, else label None."""
    fn = getattr(seg, "discover_labelled", None)
    if fn is not None:
        return [Detection(np.asarray(d.mask, dtype=bool), float(d.score), d.label) for d in fn(frame)]
    return [Detection(m, s, None) for m, s in discover_scored(seg, frame)]


def discover_detections_batch(seg: Segmenter, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
    """`discover_detections` for several frames, in one call when the segmenter batches."""
    fn = getattr(seg, "discover_labelled_batch", None)
    if fn is None or len(frames) < 2:
        return [discover_detections(seg, f) for f in frames]
    out = fn(frames)
    if len(out) != len(frames):
        raise RuntimeError(f"{type(seg).__name__}.discover_labelled_batch returned {len(out)} lists for {len(frames)} frames")
    return [[Detection(np.asarray(d.mask, dtype=bool), float(d.score), d.label) for d in dets] for dets in out]


def discover_scored(seg: Segmenter, frame: np.ndarray) -> list[tuple[np.ndarray, float]]:
    fn = getattr(seg, "discover_scored", None)
    if fn is not None:
        return [(np.asarray(m, dtype=bool), float(s)) for m, s in fn(frame)]
    return [(np.asarray(m, dtype=bool), 1.0) for m in seg.discover(frame)]


def propagate_scored(
    seg: Segmenter, frames: Sequence[np.ndarray], seeds: Mapping[int, np.ndarray]
) -> list[dict[int, tuple[np.ndarray, float]]]:
    fn = getattr(seg, "propagate_scored", None)
    if fn is not None:
        out = fn(frames, seeds)
        return [{k: (np.asarray(m, dtype=bool), float(s)) for k, (m, s) in d.items()} for d in out]
    out = seg.propagate(frames, seeds)
    return [{k: (np.asarray(m, dtype=bool), 1.0) for k, m in d.items()} for d in out]


def seed_mask(
    seg: Segmenter,
    frame: np.ndarray,
    box: Sequence[float] | None = None,
    points: Sequence[Sequence[float]] | None = None,
    labels: Sequence[int] | None = None,
) -> np.ndarray | None:
    """Mask for a user prompt on `frame` (HxW bool), via the segmenter's `prompt_mask` when it has one."""
    h, w = frame.shape[:2]
    if box is None and not points:
        raise PromptError("a prompt needs a box or at least one point")
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x1 > x0 and y1 > y0):
            raise PromptError(f"box {box} is empty: need x0 < x1 and y0 < y1 (pixels, x1/y1 exclusive)")
    if points and labels is not None and len(labels) != len(points):
        raise PromptError(f"{len(points)} points but {len(labels)} labels")
    fn = getattr(seg, "prompt_mask", None)
    if fn is not None:
        m = fn(frame, box=box, points=points, labels=labels)
        return None if m is None else np.asarray(m, dtype=bool)
    if box is None:
        raise PromptError(f"{type(seg).__name__} cannot turn points into a mask; give a box")
    mask = np.zeros((h, w), dtype=bool)
    xa, ya = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    xb, yb = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
    mask[ya:yb, xa:xb] = True
    return mask
