"""Per-object attributes computed from masks and pixels: dominant colour, speed and direction.

Colour: each sampled mask pixel is named from its HSV value with a small palette (`COLOR_NAMES`); the
track's colour is the most frequent name over all its frames. Direction convention: degrees in [0, 360),
0 = moving right (+x), 90 = moving up in the image (-y), 180 = left, 270 = down.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

COLOR_NAMES: tuple[str, ...] = (
    "red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "white", "gray", "black", "brown",
)
_INDEX = {name: i for i, name in enumerate(COLOR_NAMES)}

# Hue bins (degrees, upper bound exclusive) for saturated, not-too-dark pixels.
_HUE_BINS: tuple[tuple[float, str], ...] = (
    (15, "red"), (40, "orange"), (70, "yellow"), (160, "green"), (195, "cyan"),
    (255, "blue"), (285, "purple"), (340, "pink"), (361, "red"),
)


def color_counts(frame: np.ndarray, mask: np.ndarray, max_pixels: int = 4096) -> np.ndarray:
    """Counts (len(COLOR_NAMES),) of colour names over up to `max_pixels` evenly spaced mask pixels."""
    counts = np.zeros(len(COLOR_NAMES), dtype=np.int64)
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return counts
    step = max(1, xs.size // max_pixels)
    rgb = frame[ys[::step], xs[::step]].astype(np.uint8).reshape(-1, 1, 3)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(np.float64)
    hue = hsv[:, 0] * 360.0 / 256.0
    sat = hsv[:, 1] / 255.0
    val = hsv[:, 2] / 255.0
    names = np.empty(hue.shape[0], dtype=np.int64)
    lo = 0.0
    for hi, name in _HUE_BINS:
        names[(hue >= lo) & (hue < hi)] = _INDEX[name]
        lo = hi
    brown = (hue >= 10) & (hue < 45) & (val < 0.6) & (sat >= 0.35)
    names[brown] = _INDEX["brown"]
    achromatic = sat < 0.25
    names[achromatic & (val >= 0.8)] = _INDEX["white"]
    names[achromatic & (val < 0.8)] = _INDEX["gray"]
    names[val < 0.2] = _INDEX["black"]
    np.add.at(counts, names, 1)
    return counts


def dominant_color(counts: np.ndarray) -> str:
    counts = np.asarray(counts)
    if counts.sum() == 0:
        return "unknown"
    return COLOR_NAMES[int(np.argmax(counts))]


def motion_stats(times: list[float], centroids: list[tuple[float, float]]) -> tuple[float, float]:
    """(mean speed px/s, direction deg) from centroid positions over time.

    Speed is the mean over consecutive sampled frames of |displacement| / elapsed time. Direction is the
    angle of the net displacement (= the mean velocity), in the convention of this module; NaN when there
    are fewer than two frames or no net motion.
    """
    pts = [(t, c) for t, c in zip(times, centroids, strict=True) if math.isfinite(c[0])]
    if len(pts) < 2:
        return math.nan, math.nan
    speeds = []
    for (t0, c0), (t1, c1) in zip(pts, pts[1:], strict=False):
        dt = t1 - t0
        if dt > 0:
            speeds.append(math.hypot(c1[0] - c0[0], c1[1] - c0[1]) / dt)
    speed = float(np.mean(speeds)) if speeds else math.nan
    dx = pts[-1][1][0] - pts[0][1][0]
    dy = pts[-1][1][1] - pts[0][1][1]
    if math.hypot(dx, dy) < 1e-6:
        return speed, math.nan
    return speed, math.degrees(math.atan2(-dy, dx)) % 360.0
