"""Object thumbnails: a crop of the object's best frame with some context and its mask outline, plus the
whole frame at reduced size, both as JPEG.

Coordinates: boxes are pixels of the full frame, (x0, y0, x1, y1) with x1/y1 exclusive (storage.schemas).
The crop is the object's box grown by `context` of its size on every side (at least `min_context_px`),
clipped to the frame; the outline is the mask's contour drawn after the crop is scaled to its JPEG size,
so it keeps `outline_px` pixels whatever the object's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pixelrefer_core.masks import mask_box
from pixelrefer_core.render.colors import RGB
from pixelrefer_core.render.images import encode_jpeg, fit_size, resize_to

__all__ = ["DEFAULT_CONFIG", "Thumbnail", "ThumbnailConfig", "context_box", "draw_outline", "make_thumbnail"]

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class ThumbnailConfig:
    """crop_side / frame_side: longest side of the crop / reduced frame JPEG, pixels."""

    crop_side: int = 192
    frame_side: int = 480
    context: float = 0.25
    min_context_px: int = 8
    quality: int = 85
    outline_px: int = 2

    def as_dict(self) -> dict[str, float | int]:
        return dict(crop_side=self.crop_side, frame_side=self.frame_side, context=self.context,
                    min_context_px=self.min_context_px, quality=self.quality, outline_px=self.outline_px)


DEFAULT_CONFIG = ThumbnailConfig()


@dataclass(frozen=True)
class Thumbnail:
    """JPEG bytes of the crop and of the reduced frame, their sizes, and the crop's box in the full frame."""

    crop_jpeg: bytes
    crop_w: int
    crop_h: int
    crop_box: Box
    frame_jpeg: bytes
    frame_w: int
    frame_h: int


def context_box(box: tuple[float, float, float, float], width: int, height: int, context: float = 0.25,
                min_px: int = 8) -> Box:
    """`box` grown by `context` x its size (at least `min_px`) on each side, as ints clipped to the frame.
    An empty or out-of-frame box gives the whole frame."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        return (0, 0, width, height)
    gx = max(min_px, (x1 - x0) * context)
    gy = max(min_px, (y1 - y0) * context)
    bx0, by0 = max(0, int(np.floor(x0 - gx))), max(0, int(np.floor(y0 - gy)))
    bx1, by1 = min(width, int(np.ceil(x1 + gx))), min(height, int(np.ceil(y1 + gy)))
    if bx1 <= bx0 or by1 <= by0:
        return (0, 0, width, height)
    return (bx0, by0, bx1, by1)


def draw_outline(rgb: np.ndarray, mask: np.ndarray, color: RGB, thickness: int = 1) -> np.ndarray:
    """`rgb` (modified in place and returned) with the contour of `mask` (same HxW) drawn in `color`."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if contours:
        cv2.drawContours(rgb, contours, -1, tuple(int(c) for c in color), thickness, lineType=cv2.LINE_AA)
    return rgb


def _fit_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    if mask.shape == (height, width):
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def make_thumbnail(frame: np.ndarray, mask: np.ndarray | None, color: RGB,
                   box: tuple[float, float, float, float] | None = None,
                   config: ThumbnailConfig = DEFAULT_CONFIG) -> Thumbnail:
    """The thumbnail of one object on one decoded frame (RGB HxWx3 uint8). `mask`: HxW bool (resized to
    the frame when its size differs; None: no outline); `box`: its box (default: the mask's box)."""
    height, width = frame.shape[:2]
    fitted = None if mask is None else _fit_mask(mask, width, height)
    if box is None:
        box = mask_box(fitted) if fitted is not None else (0, 0, width, height)
    cx0, cy0, cx1, cy1 = context_box(box, width, height, config.context, config.min_context_px)
    cw, ch = fit_size(cx1 - cx0, cy1 - cy0, config.crop_side)
    crop = np.ascontiguousarray(resize_to(frame[cy0:cy1, cx0:cx1], cw, ch))
    if fitted is not None:
        small = cv2.resize(fitted[cy0:cy1, cx0:cx1].astype(np.uint8), (cw, ch), interpolation=cv2.INTER_NEAREST)
        draw_outline(crop, small.astype(bool), color, config.outline_px)
    fw, fh = fit_size(width, height, config.frame_side)
    reduced = np.ascontiguousarray(resize_to(frame, fw, fh))
    return Thumbnail(crop_jpeg=encode_jpeg(crop, config.quality), crop_w=cw, crop_h=ch, crop_box=(cx0, cy0, cx1, cy1),
                     frame_jpeg=encode_jpeg(reduced, config.quality), frame_w=fw, frame_h=fh)
