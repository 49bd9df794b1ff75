"""User seeds: checking them against a video before tracking, and turning them into masks while tracking."""

from __future__ import annotations

import math

import numpy as np

from pixelrefer_core.errors import PromptError
from pixelrefer_core.tracking.segmenter import Segmenter, seed_mask
from pixelrefer_core.tracking.types import Prompt


def _describe(prompt: Prompt) -> str:
    if prompt.box is not None:
        where = f"box {list(prompt.box)}"
    elif prompt.points:
        where = f"points {[list(p) for p in prompt.points]}"
    else:
        where = "mask"
    return f"seed on frame {prompt.frame_index} ({where})"


def validate_prompt(prompt: Prompt, width: int, height: int, num_frames: int) -> None:
    """Raise PromptError when `prompt` cannot apply to a `width` x `height` video of `num_frames` frames.

    Checked: frame_index in 0..num_frames-1; a box with x0 < x1, y0 < y1 inside [0, width] x [0, height]
    (pixels, x1/y1 exclusive, so a full-frame box is (0, 0, width, height)); points inside the frame,
    labels 0/1, one per point, at least one positive; a mask of the frame's size, not empty, alone;
    object_id >= 1. A box or point partly off the frame
    usually means coordinates of another resolution, so it is refused rather than clipped.
    """
    what = _describe(prompt)
    if prompt.frame_index < 0:
        raise PromptError(f"{what}: frame index must be >= 0")
    if prompt.frame_index >= num_frames:
        raise PromptError(
            f"{what}: the video has {num_frames} frames (0..{num_frames - 1}); the seed is after its end"
        )
    if prompt.mask is not None:
        if prompt.box is not None or prompt.points:
            raise PromptError(f"{what}: give a mask alone, not with a box or points")
        shape = np.shape(prompt.mask)
        if shape != (height, width):
            raise PromptError(f"{what}: mask is {shape}, the frame is {height}x{width} (need HxW)")
        if not np.any(prompt.mask):
            raise PromptError(f"{what}: mask is empty")
    elif prompt.box is None and not prompt.points:
        raise PromptError(f"{what}: a seed needs a box, a mask or at least one point")
    if prompt.box is not None:
        x0, y0, x1, y1 = (float(v) for v in prompt.box)
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise PromptError(f"{what}: box coordinates must be finite numbers")
        if not (x1 > x0 and y1 > y0):
            raise PromptError(f"{what}: box is empty, need x0 < x1 and y0 < y1")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise PromptError(
                f"{what}: box lies outside the {width}x{height} frame (x in [0, {width}], y in [0, {height}])"
            )
    if prompt.points:
        for x, y in prompt.points:
            if not (0 <= float(x) < width and 0 <= float(y) < height):
                raise PromptError(f"{what}: point ({x}, {y}) lies outside the {width}x{height} frame")
        labels = prompt.labels if prompt.labels is not None else [1] * len(prompt.points)
        if len(labels) != len(prompt.points):
            raise PromptError(f"{what}: {len(prompt.points)} points but {len(labels)} labels")
        if set(labels) - {0, 1} or 1 not in labels:
            raise PromptError(f"{what}: labels must be 0 (background) or 1 (object), at least one 1")
    if prompt.object_id is not None and prompt.object_id < 1:
        raise PromptError(f"{what}: object id must be >= 1")


def prompt_mask_or_reason(
    seg: Segmenter, frame: np.ndarray, prompt: Prompt, min_area_frac: float, max_area_frac: float
) -> tuple[np.ndarray | None, str]:
    """(mask, '') for a usable seed on `frame`; (None, reason) when it yields no usable mask."""
    m: np.ndarray | None
    try:
        if prompt.mask is not None:
            m = np.asarray(prompt.mask, dtype=bool)
            if m.shape != frame.shape[:2]:
                raise PromptError(f"mask is {m.shape}, the frame is {frame.shape[0]}x{frame.shape[1]}")
        else:
            m = seed_mask(seg, frame, box=prompt.box, points=prompt.points, labels=prompt.labels)
    except PromptError as exc:
        return None, str(exc)
    if m is None or not m.any():
        return None, "the segmenter found no object there (empty mask)"
    frac = float(np.count_nonzero(m)) / float(m.size)
    if frac < min_area_frac:
        return None, f"the mask covers {frac:.2%} of the frame, less than min_area_frac {min_area_frac:.2%}"
    if frac > max_area_frac:
        return None, f"the mask covers {frac:.0%} of the frame, more than max_area_frac {max_area_frac:.0%}"
    return m, ""


__all__ = ["prompt_mask_or_reason", "validate_prompt"]
