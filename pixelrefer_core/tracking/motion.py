"""A weight-free segmenter for static cameras: background subtraction + connected components.

Background model: the per-pixel median of the last `history` distinct frames it has seen (frames are
recognised by a hash of their bytes, so the backward pass or a keyframe seen twice does not count twice).
The model lives on the instance, so calling it chunk after chunk behaves like one pass over the video;
it is fully deterministic. Work happens on a copy downscaled so the long side is at most `work_size`
pixels; masks are returned at full resolution.

Foreground = pixels whose largest per-channel difference from the background exceeds `threshold`,
cleaned with a morphological opening then closing. `discover` returns each connected component of the
foreground. `propagate` gives each seeded id the components touching its previous mask shifted by its
recent motion and dilated by a margin; a component touching several ids is split pixel by pixel to the
nearest predicted mask (so crossing objects keep apart).

Limitation: until `min_history` frames are seen nothing is discovered (a young median holds
the objects themselves and gives ghosts), so objects present at the very start lose their first
sampled frames (the tracker's backward pass recovers those since the previous keyframe).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from pixelrefer_core.masks import mask_centroid
from pixelrefer_core.tracking.association import shift_mask

log = logging.getLogger(__name__)


class MotionSegmenter:
    """Segmenter protocol implementation; see the module docstring."""

    segmenter_id = "motion:median-v1"
    joint_propagation = True  # objects compete for foreground pixels: seed them together

    def __init__(
        self,
        history: int = 15,
        threshold: int = 30,
        work_size: int = 480,
        min_component_frac: float = 0.0003,
        min_history: int = 8,
        margin_frac: float = 0.03,
        cache_size: int = 64,
    ):
        self.history = history
        self.threshold = threshold
        self.work_size = work_size
        self.min_component_frac = min_component_frac
        self.min_history = min_history
        self.margin_frac = margin_frac
        self._frames: deque[np.ndarray] = deque(maxlen=history)
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._fg_cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._bg: np.ndarray | None = None
        self._bg_stale = True

    # -- background model ------------------------------------------------------------------------
    @staticmethod
    def _key(frame: np.ndarray) -> bytes:
        return hashlib.blake2b(frame.tobytes(), digest_size=16).digest() + repr(frame.shape).encode()

    def _small(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        scale = min(1.0, self.work_size / max(h, w))
        if scale >= 1.0:
            return frame
        return cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)

    def _observe(self, frames: Sequence[np.ndarray]) -> list[bytes]:
        keys = []
        for f in frames:
            k = self._key(f)
            keys.append(k)
            if k in self._seen:
                continue
            self._seen[k] = None
            if len(self._seen) > 4 * self._cache_size:
                self._seen.popitem(last=False)
            self._frames.append(self._small(f))
            self._bg_stale = True
        return keys

    def _background(self) -> np.ndarray:
        if self._bg_stale or self._bg is None:
            self._bg = np.median(np.stack(self._frames), axis=0).astype(np.int16)
            self._bg_stale = False
        return self._bg

    def _foreground(self, frame: np.ndarray, key: bytes) -> np.ndarray:
        """Foreground mask at work resolution (bool)."""
        if key in self._fg_cache:
            return self._fg_cache[key]
        fg = self._foreground_now(frame)
        if len(self._frames) >= self.min_history:  # early estimates are redone once the model is warm
            self._fg_cache[key] = fg
            if len(self._fg_cache) > self._cache_size:
                self._fg_cache.popitem(last=False)
        return fg

    def _foreground_now(self, frame: np.ndarray) -> np.ndarray:
        """Foreground against the current background, computed without touching the caches."""
        small = self._small(frame).astype(np.int16)
        diff = np.abs(small - self._background()).max(axis=2)
        fg = (diff > self.threshold).astype(np.uint8)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        return cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)).astype(bool)

    def _components(self, fg: np.ndarray) -> tuple[int, np.ndarray, list[int]]:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
        min_area = max(1, int(self.min_component_frac * fg.size))
        keep = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]
        return n, labels, keep

    @staticmethod
    def _full(mask_small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        if mask_small.shape == (h, w):
            return mask_small.copy()
        return cv2.resize(mask_small.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)

    def _to_small(self, mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        if mask.shape == (h, w):
            return mask.astype(bool)
        return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)

    # -- Segmenter protocol -----------------------------------------------------------------------
    def discover(self, frame: np.ndarray) -> list[np.ndarray]:
        """One HxW bool mask per foreground component of `frame` (none until the model has history)."""
        (key,) = self._observe([frame])
        if len(self._frames) < self.min_history:
            return []  # a young median still holds objects: its components would be ghosts
        fg = self._foreground(frame, key)
        _, labels, keep = self._components(fg)
        return [self._full(labels == i, frame.shape[:2]) for i in keep]

    def propagate(
        self, frames: Sequence[np.ndarray], seeds: Mapping[int, np.ndarray]
    ) -> list[dict[int, np.ndarray]]:
        return [{k: m for k, (m, _) in d.items()} for d in self.propagate_scored(frames, seeds)]

    def propagate_scored(
        self, frames: Sequence[np.ndarray], seeds: Mapping[int, np.ndarray]
    ) -> list[dict[int, tuple[np.ndarray, float]]]:
        """Per frame {id: (mask, score)}; score = overlap of the new mask with the motion-predicted one."""
        if not frames:
            return []
        keys = self._observe(frames)
        out: list[dict[int, tuple[np.ndarray, float]]] = [{k: (np.asarray(m, bool), 1.0) for k, m in seeds.items()}]
        if not seeds:
            for f, k in zip(frames[1:], keys[1:], strict=True):
                self._foreground(f, k)  # keep the cache warm for a later backward pass
            return out + [{} for _ in frames[1:]]
        small0 = self._small(frames[0]).shape[:2]
        margin = max(2, int(round(self.margin_frac * float(np.hypot(*small0)))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
        history: dict[int, list[np.ndarray]] = {k: [self._to_small(np.asarray(m, bool), small0)] for k, m in seeds.items()}
        for f, key in zip(frames[1:], keys[1:], strict=True):
            fg = self._foreground(f, key)
            _, labels, keep = self._components(fg)
            predicted: dict[int, np.ndarray] = {}
            for oid, hist in history.items():
                if not hist:
                    continue
                dx = dy = 0.0
                if len(hist) >= 2:
                    (xa, ya), (xb, yb) = mask_centroid(hist[-2]), mask_centroid(hist[-1])
                    if np.isfinite([xa, ya, xb, yb]).all():
                        dx, dy = xb - xa, yb - ya
                predicted[oid] = shift_mask(hist[-1], dx, dy)
            # Each id takes the foreground (of kept components) within reach of its prediction; pixels
            # within reach of several ids go to the nearest predicted mask.
            allowed = np.isin(labels, keep) & fg
            ids = list(predicted)
            reach = np.stack(
                [cv2.dilate(predicted[o].astype(np.uint8), kernel).astype(bool) & allowed for o in ids]
            ) if ids else np.zeros((0, *fg.shape), bool)
            masks: dict[int, np.ndarray] = {}
            contested = reach.sum(axis=0) > 1 if ids else np.zeros(fg.shape, bool)
            if contested.any():
                dists = np.stack(
                    [cv2.distanceTransform((~predicted[o]).astype(np.uint8), cv2.DIST_L2, 3) for o in ids]
                )
                dists[~reach] = np.inf
                nearest = np.argmin(dists, axis=0)
            for j, o in enumerate(ids):
                m = reach[j].copy()
                if contested.any():
                    m[contested] = nearest[contested] == j
                masks[o] = m
            frame_out: dict[int, tuple[np.ndarray, float]] = {}
            for oid in history:
                m = masks.get(oid)
                if m is None or not m.any():
                    history[oid] = []  # gone: stays absent for the rest of this chunk
                    continue
                pred = predicted[oid]
                union = np.count_nonzero(m | pred)
                score = float(np.count_nonzero(m & pred)) / union if union else 0.0
                history[oid] = (history[oid] + [m])[-2:]
                frame_out[oid] = (self._full(m, f.shape[:2]), round(score, 4))
            out.append(frame_out)
        return out

    def prompt_mask(
        self,
        frame: np.ndarray,
        box: Sequence[float] | None = None,
        points: Sequence[Sequence[float]] | None = None,
        labels: Sequence[int] | None = None,
    ) -> np.ndarray | None:
        """Foreground inside `box` (or the components under positive `points`); the box itself if none.

        Read-only: the frame is compared with the current background model and not added to it, so a
        seed leaves the model (and every later mask) as it would be without the seed."""
        h, w = frame.shape[:2]
        fg = self._full(self._foreground_now(frame), (h, w)) if len(self._frames) >= 2 else np.zeros((h, w), bool)
        if box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            region = np.zeros((h, w), dtype=bool)
            region[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
            m = fg & region
            return m if m.any() else region
        pts = list(points or [])
        n, comp = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
        labels = labels if labels is not None else [1] * len(pts)
        m = np.zeros((h, w), dtype=bool)
        for (x, y), lab in zip(pts, labels, strict=True):
            xi, yi = int(np.clip(x, 0, w - 1)), int(np.clip(y, 0, h - 1))
            c = comp[yi, xi]
            if lab and c > 0:
                m |= comp == c
        return m if m.any() else None
