"""Masks held between sampled frames: which stored mask each object shows on every frame of a video.

Tracking runs at a sample rate (e.g. 2 fps of a 30 fps video), so the timeline has a mask on the
sampled frames only. For a frame f, each object shows its latest record r with r.frame_idx <= f, held
until the next sampled frame of the video (the next frame any object has a record on), and for at most
`hold_frames` frames (default: the most common step between sampled frames), so an object that is not
seen on a sampled frame disappears there, and a gap in the sampling never stretches a mask for long.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pixelrefer_core.masks import decode_rle

__all__ = ["HeldMasks", "MaskRecord"]


@dataclass(frozen=True)
class MaskRecord:
    """One object's record on one sampled frame: box in pixels (x1/y1 exclusive), COCO RLE mask."""

    object_id: int
    frame_idx: int
    box: tuple[float, float, float, float]
    mask_rle: str | None
    mask_h: int
    mask_w: int

    def decode(self) -> np.ndarray | None:
        """The HxW bool mask (None when the record has none)."""
        if self.mask_rle is None or not self.mask_h or not self.mask_w:
            return None
        return decode_rle(self.mask_rle, self.mask_h, self.mask_w)


class HeldMasks:
    """The schedule of records over a video's frames (see module docstring)."""

    def __init__(self, records: Iterable[MaskRecord], hold_frames: int | None = None):
        by_object: dict[int, list[MaskRecord]] = {}
        for r in records:
            by_object.setdefault(int(r.object_id), []).append(r)
        self._records = {oid: sorted(rs, key=lambda r: r.frame_idx) for oid, rs in sorted(by_object.items())}
        self._frames = {oid: [r.frame_idx for r in rs] for oid, rs in self._records.items()}
        self.grid: list[int] = sorted({r.frame_idx for rs in self._records.values() for r in rs})
        self.hold_frames = hold_frames if hold_frames is not None else _usual_step(self.grid)
        if self.hold_frames < 1:
            raise ValueError(f"hold_frames must be >= 1, got {self.hold_frames}")

    @property
    def object_ids(self) -> list[int]:
        return list(self._records)

    def _next_sample(self, frame_idx: int) -> int | None:
        i = bisect.bisect_right(self.grid, frame_idx)
        return self.grid[i] if i < len(self.grid) else None

    def at(self, frame_idx: int) -> list[MaskRecord]:
        """The records shown on `frame_idx`, by object id."""
        out = []
        for oid, frames in self._frames.items():
            i = bisect.bisect_right(frames, frame_idx) - 1
            if i < 0:
                continue
            rec = self._records[oid][i]
            until = rec.frame_idx + self.hold_frames
            nxt = self._next_sample(rec.frame_idx)
            if nxt is not None:
                until = min(until, nxt)
            if rec.frame_idx == frame_idx or frame_idx < until:
                out.append(rec)
        return out


def _usual_step(grid: list[int]) -> int:
    if len(grid) < 2:
        return 1
    steps = np.diff(np.asarray(grid))
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])
