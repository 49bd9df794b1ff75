"""PixelRefer-Lite SAOT object processing (Lite reference §2.1): per mask, a scaled context crop + patch-grid mask,
plus the images OCI attends to (a 336x336 global view of the frame and a 224x224 local view of the crop).

Coordinates: frames are HxWx3 uint8 RGB, masks HxW (any dtype, nonzero = object). Boxes are
(top, left, bottom, right) in pixels with bottom/right *inclusive*, as the released `box_params`.

Rules, as in the official Lite code:
- box = cv2.boundingRect of the mask; context window = box grown by `patch_size * expanding_rate` (28) px
  on each side, clipped to the frame; crop = frame[top:bottom_excl, left:right_excl].
- msum = mask pixel count (whole mask); scale = ceil(sqrt(196 * 32 / max(msum, 1))); when scale == 1 and
  msum / 196 > 50 the object is large and scale = 1 / sqrt((msum / 196) / 50) (shrinks it).
- target side = ceil(side * scale / 14) * 14; cv2.resize with INTER_LINEAR when either target side >=
  the crop side, INTER_AREA otherwise.
- grid mask = cv2.resize(crop mask as float32, (target_w // 14, target_h // 14), INTER_LINEAR): a soft
  mask sampled once per patch cell (a cell is "in" when > 0).
- global = cv2.resize(frame, (336, 336), INTER_AREA); local = cv2.resize(unscaled crop, (224, 224), INTER_AREA).
- empty mask: crop = zeros(14, 14, 3), grid mask = zeros(1, 1), local = the whole frame at 224, box (0,0,0,0).

`reuse_first_local_crop` (default False): the official code caches the local image per frame, so every
mask on a frame gets the *first* mask's local crop. That is a bug; set True only for parity with
released outputs. With False each mask gets its own local crop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

__all__ = ["SAOTObject", "SAOTResult", "crop_scale", "process_objects"]

PATCH_AREA = 14 * 14


@dataclass(frozen=True)
class SAOTObject:
    """One mask after dynamic processing.

    crop: uint8 [h, w, 3], h and w multiples of 14 (the scaled context crop).
    grid_mask: float32 [h // 14, w // 14] soft mask on the patch grid ([1, 1] zeros for an empty mask).
    box: (top, left, bottom, right), inclusive, in frame pixels.
    image_size: (H, W) of the frame.
    frame_id: index into the request's frames.
    local_image: uint8 [224, 224, 3] local view for OCI.
    scale: the scale rate applied to the context crop (1.0 for an empty mask).
    empty: True when the mask had no pixels.
    """

    crop: np.ndarray
    grid_mask: np.ndarray
    box: tuple[int, int, int, int]
    image_size: tuple[int, int]
    frame_id: int
    local_image: np.ndarray
    scale: float
    empty: bool


@dataclass(frozen=True)
class SAOTResult:
    """objects: one per mask, in mask order; global_images: frame_id -> uint8 [336, 336, 3]."""

    objects: list[SAOTObject]
    global_images: dict[int, np.ndarray]


def crop_scale(msum: int, mask_token_num: int = 32, large_object_threshold: float = 50.0) -> float:
    """Scale rate for a mask of `msum` pixels (int >= 1 for small objects, < 1 for large ones)."""
    scale: float = math.ceil(math.sqrt(PATCH_AREA * mask_token_num / max(msum, 1)))
    if scale == 1 and msum / PATCH_AREA > large_object_threshold:
        scale = 1 / math.sqrt((msum / PATCH_AREA) / large_object_threshold)
    return scale


def _process_one(
    image: np.ndarray,
    mask: np.ndarray,
    frame_id: int,
    *,
    patch_size: int,
    expanding_rate: int,
    mask_token_num: int,
    threshold: float,
    local_size: int,
) -> SAOTObject:
    H, W = image.shape[:2]
    nz = cv2.findNonZero((mask != 0).astype(np.uint8))
    if nz is None:
        local = cv2.resize(image, (local_size, local_size), interpolation=cv2.INTER_AREA)
        return SAOTObject(
            crop=np.zeros((patch_size, patch_size, 3), dtype=np.uint8),
            grid_mask=np.zeros((1, 1), dtype=np.float32),
            box=(0, 0, 0, 0),
            image_size=(H, W),
            frame_id=frame_id,
            local_image=local,
            scale=1.0,
            empty=True,
        )
    x, y, bw, bh = cv2.boundingRect(nz)
    pad = patch_size * expanding_rate
    top, left = max(0, y - pad), max(0, x - pad)
    bottom_excl, right_excl = min(H, y + bh + pad), min(W, x + bw + pad)
    crop = image[top:bottom_excl, left:right_excl]
    crop_mask = mask[top:bottom_excl, left:right_excl]
    mask_h, mask_w = crop.shape[:2]
    scale = crop_scale(int((mask != 0).sum()), mask_token_num, threshold)
    resize_h = math.ceil(mask_h * scale / patch_size) * patch_size
    resize_w = math.ceil(mask_w * scale / patch_size) * patch_size
    interp = cv2.INTER_LINEAR if (resize_h >= mask_h or resize_w >= mask_w) else cv2.INTER_AREA
    scaled = cv2.resize(crop, (resize_w, resize_h), interpolation=interp)
    grid = cv2.resize(
        (crop_mask != 0).astype(np.float32),
        (resize_w // patch_size, resize_h // patch_size),
        interpolation=cv2.INTER_LINEAR,
    )
    grid = grid.reshape(resize_h // patch_size, resize_w // patch_size)
    local = cv2.resize(crop, (local_size, local_size), interpolation=cv2.INTER_AREA)
    box = (top, left, min(H - 1, bottom_excl - 1), min(W - 1, right_excl - 1))
    return SAOTObject(
        crop=np.ascontiguousarray(scaled),
        grid_mask=grid,
        box=box,
        image_size=(H, W),
        frame_id=frame_id,
        local_image=local,
        scale=float(scale),
        empty=False,
    )


def process_objects(
    frames: Sequence[np.ndarray],
    masks: np.ndarray | Sequence[np.ndarray] | torch.Tensor,
    mask_frame_ids: Sequence[int],
    *,
    patch_size: int = 14,
    expanding_rate: int = 2,
    mask_token_num: int = 32,
    large_object_threshold: float = 50.0,
    global_size: int = 336,
    local_size: int = 224,
    reuse_first_local_crop: bool = False,
) -> SAOTResult:
    """Run SAOT dynamic processing for every mask. `masks[i]` lies on `frames[mask_frame_ids[i]]`.

    masks may be a numpy array, a (CPU or GPU) torch tensor [N, H, W], or a sequence of HxW arrays.
    """
    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    if len(masks) != len(mask_frame_ids):
        raise ValueError(
            f"{len(masks)} masks but {len(mask_frame_ids)} mask_frame_ids; give one frame id per mask"
        )
    objects: list[SAOTObject] = []
    globals_: dict[int, np.ndarray] = {}
    first_local: dict[int, np.ndarray] = {}
    for i, (mask, fid) in enumerate(zip(masks, mask_frame_ids, strict=True)):
        fid = int(fid)
        if not 0 <= fid < len(frames):
            raise ValueError(f"mask {i}: frame id {fid} is outside the {len(frames)} frames given")
        image = np.asarray(frames[fid])
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"frame {fid} must be HxWx3 uint8 RGB, got shape {image.shape} dtype {image.dtype}"
            )
        mask = np.asarray(mask)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask {i} has shape {mask.shape} but frame {fid} is {image.shape[:2]}")
        obj = _process_one(
            image,
            mask,
            fid,
            patch_size=patch_size,
            expanding_rate=expanding_rate,
            mask_token_num=mask_token_num,
            threshold=large_object_threshold,
            local_size=local_size,
        )
        if reuse_first_local_crop:
            local = first_local.setdefault(fid, obj.local_image)
            if local is not obj.local_image:
                obj = SAOTObject(**{**obj.__dict__, "local_image": local})
        objects.append(obj)
        if fid not in globals_:
            globals_[fid] = cv2.resize(image, (global_size, global_size), interpolation=cv2.INTER_AREA)
    return SAOTResult(objects=objects, global_images=globals_)
