"""Drawing one overlay frame: each object's mask tinted in its colour, its outline, box, id and caption.

Only pixels of a mask, of its outline and box, and of the label strip above the box change; everything
else is the source frame untouched (what the overlay test checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pixelrefer_core.render.colors import RGB
from pixelrefer_core.render.thumbnails import draw_outline

__all__ = ["OverlayObject", "draw_overlay", "label_text"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
MAX_LABEL_CHARS = 40


@dataclass(frozen=True)
class OverlayObject:
    """One object on one frame: mask HxW bool at the frame's size (None: box only), box in the frame's
    pixels (x1/y1 exclusive), colour, and the label text (e.g. '3 a red car')."""

    object_id: int
    mask: np.ndarray | None
    box: tuple[float, float, float, float]
    color: RGB
    label: str = ""


def label_text(object_id: int, caption: str | None) -> str:
    """'<id>' or '<id> <caption>' shortened to MAX_LABEL_CHARS (ASCII: the Hershey font has no other glyphs)."""
    text = str(object_id)
    if caption:
        clean = " ".join(caption.encode("ascii", "replace").decode().split())
        text = f"{text} {clean}"
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 3] + "..."


def _text_color(color: RGB) -> tuple[int, int, int]:
    luma = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def _tint(out: np.ndarray, mask: np.ndarray, color: RGB, alpha: float) -> None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    roi, m = out[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    tinted = roi[m].astype(np.float32) * (1.0 - alpha) + np.asarray(color, np.float32) * alpha
    roi[m] = np.clip(tinted + 0.5, 0, 255).astype(np.uint8)


def _label(out: np.ndarray, text: str, box: tuple[int, int, int, int], color: RGB, scale: float) -> None:
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    x0, y0 = box[0], box[1]
    top = y0 - th - base - 2
    if top < 0:  # no room above the box: inside its top edge
        top = y0
    x1 = min(out.shape[1], x0 + tw + 4)
    cv2.rectangle(out, (x0, top), (x1, top + th + base + 2), tuple(int(c) for c in color), -1)
    cv2.putText(out, text, (x0 + 2, top + th + 1), _FONT, scale, _text_color(color), 1, cv2.LINE_AA)


def draw_overlay(frame: np.ndarray, objects: Sequence[OverlayObject], alpha: float = 0.45,
                 font_scale: float | None = None) -> np.ndarray:
    """A copy of `frame` (RGB HxWx3 uint8) with `objects` drawn (see module docstring)."""
    out = frame.copy()
    h, w = out.shape[:2]
    scale = font_scale if font_scale is not None else max(0.35, min(0.8, h / 600))
    for obj in objects:
        if obj.mask is not None:
            _tint(out, obj.mask, obj.color, alpha)
            draw_outline(out, obj.mask, obj.color, 1)
    for obj in objects:  # boxes and labels last, so no tint covers another object's label
        x0, y0 = int(max(0, np.floor(obj.box[0]))), int(max(0, np.floor(obj.box[1])))
        x1, y1 = int(min(w, np.ceil(obj.box[2]))), int(min(h, np.ceil(obj.box[3])))
        if x1 <= x0 or y1 <= y0:
            continue
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), tuple(int(c) for c in obj.color), 1)
        if obj.label:
            _label(out, obj.label, (x0, y0, x1, y1), obj.color, scale)
    return out
