"""Matching masks to tracks: Hungarian assignment on 1 - IoU (scipy.optimize.linear_sum_assignment)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def hungarian_match(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Pairs (row, col) of an optimal one-to-one assignment maximising total IoU, kept where IoU >= min_iou.

    `iou` is [N, M] (e.g. proposals x tracks). Rows/columns not returned are unmatched.
    """
    iou = np.asarray(iou, dtype=np.float64)
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(1.0 - iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou]


def uncovered_fraction(mask: np.ndarray, covered: np.ndarray) -> float:
    """Fraction of `mask`'s pixels outside `covered` (both HxW bool); 0 for an empty mask."""
    area = np.count_nonzero(mask)
    if area == 0:
        return 0.0
    return float(np.count_nonzero(mask & ~covered)) / float(area)


def shift_mask(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Translate an HxW bool mask by (dx, dy) pixels (rounded), without wrapping around."""
    h, w = mask.shape
    dx, dy = int(round(dx)), int(round(dy))
    out = np.zeros_like(mask)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    src = mask[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out
