"""Choosing which frames of a tracked object to show the model."""

from __future__ import annotations

import math
from collections.abc import Sequence


def select_frames(
    frame_indices: Sequence[int], scores: Sequence[float], areas: Sequence[float], k: int = 8
) -> list[int]:
    """Up to k frames spread over the object's visible span, each the best view of its part of the span.

    The span [first, last] of `frame_indices` is split into k equal-width bins of frame index; in each
    non-empty bin the frame with the largest `score * sqrt(area)` is taken (ties: the earlier frame).
    When bins are empty (gaps in visibility) the remaining slots go to the best frames not yet taken.
    Returns a sorted subset of `frame_indices` (all of them when there are k or fewer). Deterministic.
    """
    if not (len(frame_indices) == len(scores) == len(areas)):
        raise ValueError(
            f"select_frames: {len(frame_indices)} frame indices, {len(scores)} scores and {len(areas)} areas differ"
        )
    if k < 1:
        raise ValueError(f"select_frames: k must be >= 1, got {k}")
    weight = {
        int(f): max(float(s), 0.0) * math.sqrt(max(float(a), 0.0))
        for f, s, a in zip(frame_indices, scores, areas, strict=True)
    }
    entries = sorted(weight.items())
    if len(entries) <= k:
        return [f for f, _ in entries]
    first, last = entries[0][0], entries[-1][0]
    width = (last - first + 1) / k
    best: dict[int, tuple[float, int]] = {}
    for f, w in entries:
        b = min(int((f - first) / width), k - 1)
        if b not in best or w > best[b][0]:
            best[b] = (w, f)
    chosen = {f for _, f in best.values()}
    if len(chosen) < k:
        rest = sorted((f for f, _ in entries if f not in chosen), key=lambda f: (-weight[f], f))
        chosen.update(rest[: k - len(chosen)])
    return sorted(chosen)


__all__ = ["select_frames", "span_frames"]


def span_frames(first_frame: int, last_frame: int, k: int = 8) -> list[int]:
    """k frame indices spread evenly over [first_frame, last_frame] (both ends included), sorted, unique.

    For the frames the full PixelRefer's LLM sees: they need no mask, so they are evenly spaced over the
    object's visible span rather than chosen by score; objects with the same span get the same frames and
    so share their vision tokens and prompt prefill in the describe engine. Deterministic.
    """
    if k < 1:
        raise ValueError(f"span_frames: k must be >= 1, got {k}")
    if last_frame < first_frame:
        raise ValueError(f"span_frames: last_frame {last_frame} is before first_frame {first_frame}")
    if k == 1:
        return [(first_frame + last_frame) // 2]
    step = (last_frame - first_frame) / (k - 1)
    return sorted({first_frame + round(i * step) for i in range(k)})
