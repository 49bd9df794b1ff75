"""Object crops and grid masks of the full PixelRefer (full reference §3: `pixelrefer/mm_utils.py`).

Per mask, on its annotated frame F (HxW): the context crop, its scale, the crop resized to a multiple of
14, the 0/1 grid mask (one cell per 14x14 patch of the resized crop) and the token count
`min(mask_num, cells == 1)`. Rules, as the official code computes them (quirks kept, §8):

- rows/cols where the mask is set; top = max(0, min_row - 28), left = max(0, min_col - 28),
  bottom = min(H - 1, max_row + 28), right = min(W - 1, max_col + 28); crop = F[top:bottom, left:right]:
  the ends are used as *exclusive* slice ends (§8.3: 28 px of context above/left, 27 below/right, the
  last frame row/column never in a crop) and the same four numbers are the box of the position encoding.
- area = mask pixel count; scale = ceil(sqrt(196 * 32 / area)) with the division in float32 (the official
  code divides a Python int by a torch int64 sum); when scale == 1 and area / 196 > 100 (float32), the
  object is large: scale = 1 / sqrt(area / 196 / 100). Threshold 100 * 196 (Lite: 50 * 196).
- resize_h = ceil(crop_h * scale / 14) * 14 (same for w); `cv2.resize` INTER_LINEAR always (Lite switches
  to INTER_AREA when shrinking).
- grid mask: the uint8 crop mask bilinearly resized (align_corners=False, no antialias) to the grid with
  PyTorch's CPU uint8 kernel, which rounds half up after each separable pass and so differs from rounding
  a float bilinear result (§3.3); 0 tokens happen (thin or edge-only masks) and are kept (§8.4).

Conscious deviation (§8.2, the mask contract): masks of any dtype are binarised (`m > 0`); the official
code crashes on anything but uint8 {0, 1}. An empty mask is refused (InputError naming it) instead of
crashing; the official evaluations skip empty masks before calling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError

__all__ = [
    "CONTEXT",
    "ObjectCrop",
    "binarize_masks",
    "crop_object",
    "crop_objects",
    "crop_scale",
    "grid_mask",
]

PATCH = 14
PATCH_AREA = PATCH * PATCH
CONTEXT = PATCH * 2  # expanding_rate 2
LARGE_OBJECT_THRESHOLD = 100.0


@dataclass(frozen=True)
class ObjectCrop:
    """One mask after the full model's object processing.

    crop: uint8 [h, w, 3], h and w multiples of 14; grid_mask: uint8 [h // 14, w // 14] of 0/1;
    box: (top, left, bottom, right) exactly as the official box_params (bottom/right are the exclusive
    crop ends, see the module docstring); image_size: (H, W) of the annotated frame; frame_id: index into
    the annotated frames; scale: the scale applied to the context crop; num_tokens: min(mask_num, cells).
    """

    crop: np.ndarray
    grid_mask: np.ndarray
    box: tuple[int, int, int, int]
    image_size: tuple[int, int]
    frame_id: int
    scale: float
    num_tokens: int


def crop_scale(
    area: int, mask_num: int = 32, large_object_threshold: float = LARGE_OBJECT_THRESHOLD
) -> float:
    """Scale of a mask of `area` pixels: an integer >= 2 below 6,272 px, 1 up to 19,600 px, < 1 above."""
    ratio = np.float32(PATCH_AREA * mask_num) / np.float32(area)
    scale: float = math.ceil(math.sqrt(float(ratio)))
    cells = np.float32(area) / np.float32(PATCH_AREA)
    if scale == 1 and cells > large_object_threshold:
        scale = 1 / math.sqrt(float(cells / np.float32(large_object_threshold)))
    return scale


def grid_mask(crop_mask: np.ndarray, grid_h: int, grid_w: int) -> np.ndarray:
    """uint8 0/1 [grid_h, grid_w]: the uint8 crop mask through torch's CPU uint8 bilinear kernel."""
    t = torch.from_numpy(np.ascontiguousarray(crop_mask, dtype=np.uint8))[None, None]
    out = F.interpolate(t, size=(grid_h, grid_w), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def crop_object(image: np.ndarray, mask: np.ndarray, frame_id: int = 0, mask_num: int = 32) -> ObjectCrop:
    """The crop, grid mask, box and token count of one binary mask (HxW bool/uint8) on `image` (HxWx3)."""
    height, width = image.shape[:2]
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise InputError("the mask is empty")
    top, left = max(0, int(rows.min()) - CONTEXT), max(0, int(cols.min()) - CONTEXT)
    bottom, right = min(height - 1, int(rows.max()) + CONTEXT), min(width - 1, int(cols.max()) + CONTEXT)
    crop_h, crop_w = bottom - top, right - left
    if crop_h < 1 or crop_w < 1:
        raise InputError(
            f"the {height}x{width} frame is too small for an object crop (crop {crop_h}x{crop_w})"
        )
    scale = crop_scale(int(rows.size), mask_num)
    resize_h = math.ceil(crop_h * scale / PATCH) * PATCH
    resize_w = math.ceil(crop_w * scale / PATCH) * PATCH
    crop = cv2.resize(image[top:bottom, left:right], (resize_w, resize_h), interpolation=cv2.INTER_LINEAR)
    grid = grid_mask(mask[top:bottom, left:right], resize_h // PATCH, resize_w // PATCH)
    return ObjectCrop(
        crop=np.ascontiguousarray(crop),
        grid_mask=grid,
        box=(top, left, bottom, right),
        image_size=(height, width),
        frame_id=frame_id,
        scale=float(scale),
        num_tokens=min(mask_num, int((grid == 1).sum())),
    )


def binarize_masks(masks: np.ndarray | torch.Tensor | Sequence[np.ndarray]) -> np.ndarray:
    """uint8 [N, H, W] of 0/1 (`m > 0`) from a numpy array, a torch tensor (any device) or a list of HxW."""
    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    arr = np.asarray(masks) if not isinstance(masks, np.ndarray) else masks
    if arr.ndim != 3:
        raise InputError(f"masks must be [N, H, W], got shape {arr.shape}")
    return (arr > 0).astype(np.uint8)


def crop_objects(
    frames: Sequence[np.ndarray],
    masks: np.ndarray | torch.Tensor | Sequence[np.ndarray],
    mask_frame_ids: Sequence[int],
    mask_num: int = 32,
) -> list[ObjectCrop]:
    """`crop_object` for every mask; `masks[i]` lies on `frames[mask_frame_ids[i]]`.

    Raises InputError naming the mask when the counts differ, a frame id does not exist, a mask's shape is
    not its frame's, or a mask is empty.
    """
    binary = binarize_masks(masks)
    if len(binary) != len(mask_frame_ids):
        raise InputError(
            f"{len(binary)} masks but {len(mask_frame_ids)} mask_frame_ids; give one frame id per mask"
        )
    out = []
    for i, (mask, fid) in enumerate(zip(binary, mask_frame_ids, strict=True)):
        fid = int(fid)
        if not 0 <= fid < len(frames):
            raise InputError(
                f"mask {i}: frame id {fid} does not exist ({len(frames)} annotated frames given)"
            )
        image = np.asarray(frames[fid])
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(
                f"frame {fid} must be HxWx3 uint8 RGB, got shape {image.shape} dtype {image.dtype}"
            )
        if mask.shape != image.shape[:2]:
            raise InputError(f"mask {i} has shape {mask.shape} but frame {fid} is {image.shape[:2]}")
        try:
            out.append(crop_object(image, mask, fid, mask_num))
        except InputError as err:
            raise InputError(f"mask {i} (frame {fid}): {err}") from err
    return out
