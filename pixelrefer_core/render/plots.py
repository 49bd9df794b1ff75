"""Data of the report's plots, ready for SVG: object centres over time and the object count over time.

Input rows are timeline records (object_id, frame_idx, t, box x0, y0, x1, y1 in pixels of the full
frame). Outputs are in the same pixel space (trajectories) or in (seconds, count) (counts); `svg_points`
scales them into an SVG polyline's `points` attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["BoxRow", "CountSeries", "count_series", "svg_points", "trajectories"]


@dataclass(frozen=True)
class BoxRow:
    object_id: int
    frame_idx: int
    t: float
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class CountSeries:
    """Objects present on each sampled frame: times (s) and counts, in time order; `peak` = max count."""

    times: list[float]
    counts: list[int]

    @property
    def peak(self) -> int:
        return max(self.counts, default=0)


def trajectories(rows: Iterable[BoxRow]) -> dict[int, list[tuple[float, float, float]]]:
    """object_id -> [(t, centre x, centre y)] in frame order (box centres)."""
    out: dict[int, list[tuple[int, float, float, float]]] = {}
    for r in rows:
        out.setdefault(int(r.object_id), []).append((r.frame_idx, r.t, (r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2))
    return {oid: [(t, x, y) for _, t, x, y in sorted(pts)] for oid, pts in sorted(out.items())}


def count_series(rows: Iterable[BoxRow]) -> CountSeries:
    """How many objects have a record on each frame that any object has one on."""
    per_frame: dict[int, tuple[float, set[int]]] = {}
    for r in rows:
        t, ids = per_frame.setdefault(int(r.frame_idx), (float(r.t), set()))
        ids.add(int(r.object_id))
    frames = sorted(per_frame)
    return CountSeries(times=[per_frame[f][0] for f in frames], counts=[len(per_frame[f][1]) for f in frames])


def svg_points(points: Sequence[tuple[float, float]], sx: float = 1.0, sy: float = 1.0,
               dx: float = 0.0, dy: float = 0.0) -> str:
    """'x,y x,y ...' of `points` scaled by (sx, sy) and shifted by (dx, dy), one decimal."""
    return " ".join(f"{x * sx + dx:.1f},{y * sy + dy:.1f}" for x, y in points)
