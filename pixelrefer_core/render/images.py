"""Small image helpers: JPEG encoding and decoding, resizing to a longest side (OpenCV, RGB in and out)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["decode_jpeg", "encode_jpeg", "even_size", "fit_size", "resize_to"]


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """RGB HxWx3 uint8 -> JPEG bytes (baseline, 4:2:0, what every browser and viewer opens)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"encode_jpeg expects an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV only fails on empty images, refused above
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> RGB HxWx3 uint8; ValueError when the bytes are not an image."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if arr is None:
        raise ValueError("not a decodable image")
    return np.ascontiguousarray(cv2.cvtColor(arr, cv2.COLOR_BGR2RGB))


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(w, h) scaled down (never up) so that the longest side is at most `max_side` (None: unchanged)."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def even_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) rounded down to even numbers (H.264 in 4:2:0 needs them), at least 2."""
    return max(2, width - width % 2), max(2, height - height % 2)


def resize_to(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """`rgb` resized to exactly (width, height): area interpolation when shrinking, linear otherwise."""
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb
    interp = cv2.INTER_AREA if width < w or height < h else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interp)
