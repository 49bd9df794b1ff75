"""Binary masks: COCO RLE, boxes, areas and IoU.

Masks are HxW bool arrays (or stacks N x H x W). Boxes are (x0, y0, x1, y1) in pixels with x1/y1
exclusive, so a mask covering only pixel (x=3, y=5) has box (3, 5, 4, 6) and width x1 - x0. RLE strings
are COCO compressed RLE `counts` (as produced by pycocotools, column-major) decoded with the mask's
height and width.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pycocotools import mask as coco_mask


def encode_rle(mask: np.ndarray) -> str:
    """HxW bool mask -> COCO compressed RLE counts string."""
    m = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    if m.ndim != 2:
        raise ValueError(f"encode_rle expects an HxW mask, got shape {m.shape}")
    counts = coco_mask.encode(m)["counts"]
    return counts.decode("ascii") if isinstance(counts, bytes) else str(counts)


def decode_rle(counts: str, h: int, w: int) -> np.ndarray:
    """COCO compressed RLE counts string -> HxW bool mask."""
    rle = {"size": [int(h), int(w)], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return coco_mask.decode(rle).astype(bool)


def mask_area(mask: np.ndarray) -> int:
    """Number of True pixels of an HxW mask."""
    return int(np.count_nonzero(mask))


def mask_areas(masks: np.ndarray) -> np.ndarray:
    """N x H x W -> int64 array of N areas."""
    m = np.asarray(masks, dtype=bool)
    return m.reshape(m.shape[0], -1).sum(axis=1).astype(np.int64)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (x0, y0, x1, y1), x1/y1 exclusive; (0, 0, 0, 0) for an empty mask."""
    m = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    cols = np.flatnonzero(m.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def mask_centroid(mask: np.ndarray) -> tuple[float, float]:
    """Mean (x, y) of the mask's pixel centres; (nan, nan) when empty."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return (float("nan"), float("nan"))
    return (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair: A [N,H,W], B [M,H,W] (bool) -> [N,M] float64 (0 where both are empty)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.ndim == 2:
        a = a[None]
    if b.ndim == 2:
        b = b[None]
    n, m = a.shape[0], b.shape[0]
    if n == 0 or m == 0:
        return np.zeros((n, m), dtype=np.float64)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"mask sizes differ: {a.shape[1:]} vs {b.shape[1:]}")
    fa = a.reshape(n, -1).astype(np.float32)
    fb = b.reshape(m, -1).astype(np.float32)
    inter = (fa @ fb.T).astype(np.float64)  # exact: float32 holds integers up to 2**24 pixels
    union = fa.sum(1, dtype=np.float64)[:, None] + fb.sum(1, dtype=np.float64)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """IoU of every pair of (x0, y0, x1, y1) boxes: A [N,4], B [M,4] -> [N,M] float64."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


__all__ = [
    "box_iou",
    "decode_rle",
    "encode_rle",
    "mask_area",
    "mask_areas",
    "mask_box",
    "mask_centroid",
    "mask_iou",
]
