"""What the tracker knows about one object while it runs, and how that becomes an `ObjectTrack`.

Identities: while tracking, each object has an internal key (1, 2, ... in order of creation). The ids
reported are given at the end: a user seed's forced id is kept; every other object takes the next free id
in order of creation, skipping the forced ids in use. So a seed that yields no mask changes no other
object's id (ids never depend on seeds that failed), and without seeds ids are 1, 2, ... in creation
order (tracks later dropped as too short leave gaps, as before).

Labels: every keyframe detection that carries a concept label and is assigned to a track is a vote;
the track's label is the most voted one (ties: the higher summed score), its label_score the mean score
of those votes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pixelrefer_core.masks import encode_rle, mask_area, mask_box, mask_centroid
from pixelrefer_core.tracking.attributes import color_counts, dominant_color, motion_stats
from pixelrefer_core.tracking.types import FrameRecord, ObjectTrack


@dataclass
class Frame:
    """A sampled frame while it is held. key: discovery runs on it; cut: a chunk ends on it;
    prompts: (forced id or None, seed mask) of the seeds applied on it."""

    pos: int  # position among sampled frames
    idx: int  # frame index in the video
    t: float
    rgb: np.ndarray
    key: bool = False
    cut: bool = False
    prompts: list[tuple[int | None, np.ndarray]] = field(default_factory=list)


@dataclass
class Track:
    key: int  # internal identity, see the module docstring
    discovered_by: Literal["auto", "prompt"]
    forced_id: int | None = None
    records: dict[int, FrameRecord] = field(default_factory=dict)
    centroids: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # idx -> (t, x, y)
    colors: np.ndarray | None = None
    votes: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    last_mask: np.ndarray | None = None
    last_idx: int = -1
    missing: int = 0
    retired: bool = False

    def velocity(self) -> tuple[float, float]:
        """Median centroid velocity (px per video frame) over the last few records."""
        keys = sorted(self.centroids)[-6:]
        steps = []
        for a, b in zip(keys, keys[1:], strict=False):
            (_, xa, ya), (_, xb, yb) = self.centroids[a], self.centroids[b]
            steps.append(((xb - xa) / (b - a), (yb - ya) / (b - a)))
        if not steps:
            return 0.0, 0.0
        arr = np.asarray(steps)
        return float(np.median(arr[:, 0])), float(np.median(arr[:, 1]))

    def vote(self, label: str | None, score: float) -> None:
        if label is not None:
            self.votes[label].append(float(score))

    def label(self) -> tuple[str | None, float | None]:
        if not self.votes:
            return None, None
        best = max(sorted(self.votes), key=lambda k: (len(self.votes[k]), sum(self.votes[k])))
        return best, float(np.mean(self.votes[best]))

    def record(self, fr: Frame, mask: np.ndarray, score: float, update_last: bool = True) -> None:
        h, w = mask.shape
        x0, y0, x1, y1 = mask_box(mask)
        self.records[fr.idx] = FrameRecord(
            frame_idx=fr.idx,
            t=fr.t,
            box=(float(x0), float(y0), float(x1), float(y1)),
            area=mask_area(mask),
            score=float(score),
            mask_rle=encode_rle(mask),
            mask_h=h,
            mask_w=w,
        )
        cx, cy = mask_centroid(mask)
        self.centroids[fr.idx] = (fr.t, cx, cy)
        counts = color_counts(fr.rgb, mask, max_pixels=1024)
        self.colors = counts if self.colors is None else self.colors + counts
        if update_last and fr.idx >= self.last_idx:
            self.last_mask, self.last_idx = mask, fr.idx


def final_ids(tracks: list[Track]) -> dict[int, int]:
    """Internal key -> reported object id (see the module docstring)."""
    forced = {t.forced_id for t in tracks if t.forced_id is not None}
    out: dict[int, int] = {}
    nxt = 1
    for t in sorted(tracks, key=lambda x: x.key):
        if t.forced_id is not None:
            out[t.key] = t.forced_id
            continue
        while nxt in forced:
            nxt += 1
        out[t.key] = nxt
        nxt += 1
    return out


def to_object_tracks(tracks: list[Track], frame_shape: tuple[int, int], min_frames: int) -> list[ObjectTrack]:
    """Reported tracks (at least `min_frames` frames), sorted by id, frames sorted by index."""
    ids = final_ids(tracks)
    h, w = frame_shape
    out = []
    for tr in tracks:
        if len(tr.records) < min_frames:
            continue
        frames = [tr.records[k] for k in sorted(tr.records)]
        keys = sorted(tr.centroids)
        speed, direction = motion_stats([tr.centroids[k][0] for k in keys], [tr.centroids[k][1:] for k in keys])
        areas = np.array([r.area for r in frames], dtype=np.float64)
        label, label_score = tr.label()
        out.append(
            ObjectTrack(
                object_id=ids[tr.key],
                discovered_by=tr.discovered_by,
                frames=frames,
                color=dominant_color(tr.colors if tr.colors is not None else np.zeros(1)),
                mean_speed_px_s=speed,
                direction_deg=direction,
                mean_area_frac=float(areas.mean() / (h * w)),
                max_area=int(areas.max()),
                mean_score=float(np.mean([r.score for r in frames])),
                label=label,
                label_score=label_score,
            )
        )
    return sorted(out, key=lambda t: t.object_id)


__all__ = ["Frame", "Track", "final_ids", "to_object_tracks"]
