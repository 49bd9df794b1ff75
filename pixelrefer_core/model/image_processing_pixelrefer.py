"""The DAMOVL image processor of both variants: resize to a multiple of 14*d, normalise, cut into patch rows.

Conventions: images are HxWx3 uint8 RGB numpy arrays. Output rows hold 3*14*14 = 588 float32 values in
(C, 14, 14) order, `grid_thw = (1, gh, gw)` (Lite reference §2.2, full reference §2.2).

- `merge_size` d = 1 (images, object crops, Lite's views): rows in raster order over the patch grid, sizes
  multiples of 14.
- d = 2 (the full model's video frames): sizes multiples of 28 and rows *merge-grouped*: 2x2 blocks in
  raster order of blocks, the 4 patches of a block in raster order, i.e. patch (r, c) is row
  `((r // 2) * (gw / 2) + c // 2) * 4 + (r % 2) * 2 + c % 2` (what Qwen2-VL's processor does too).

Sizes: `smart_resize` is transformers' Qwen2-VL one (round each side to the factor with Python `round`,
shrink by sqrt(h*w / max_pixels) rounding down when over budget, grow rounding up when under `min_pixels`),
after DAMOVL's own first step: a side shorter than the factor scales the image up to one factor first.
Resizing uses PIL BICUBIC on the uint8 image (transformers' `resize(..., resample=3)`), skipped when the
size is unchanged; then x * (1/255) in float64 -> float32, then (x - 0.5) / 0.5.

Budget (§8.6): one processor call over n images gives each `int(int(total / (merge / d)**2) // n)` pixels,
total = mm_max_length * merge^2 * 14^2 = 6,422,528: 1,605,632 // n for d = 1, 6,422,528 // n for d = 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as _qwen2_vl_smart_resize

__all__ = [
    "DEFAULT_MERGE_SIZE",
    "DEFAULT_MIN_PIXELS",
    "DEFAULT_TOTAL_MAX_PIXELS",
    "IMAGE_MEAN",
    "IMAGE_STD",
    "PATCH_SIZE",
    "ProcessedImage",
    "per_call_max_pixels",
    "process_image",
    "smart_resize",
]

PATCH_SIZE = 14
DEFAULT_MIN_PIXELS = 56 * 56
DEFAULT_TOTAL_MAX_PIXELS = 8192 * (2**2 * 14**2)  # mm_max_length * (spatial_merge_size**2 * 14**2)
DEFAULT_MERGE_SIZE = 2
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)


def per_call_max_pixels(
    num_images: int,
    total_max_pixels: int = DEFAULT_TOTAL_MAX_PIXELS,
    merge_size: int = DEFAULT_MERGE_SIZE,
    downsampling: int = 1,
) -> int:
    """Per-image pixel cap of one processor call over `num_images` images at `downsampling` d (official formula)."""
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    return int(int(total_max_pixels / (merge_size / downsampling) ** 2) // num_images)


def smart_resize(
    height: int,
    width: int,
    factor: int = PATCH_SIZE,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_TOTAL_MAX_PIXELS // DEFAULT_MERGE_SIZE**2,
) -> tuple[int, int]:
    """Target (height, width), both multiples of `factor`, area within [min_pixels, max_pixels] when possible."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if min(height, width) < factor:  # DAMOVL: a side below one factor first scales the image up to it
        scale = factor / min(height, width)
        height, width = round(height * scale), round(width * scale)
    h, w = _qwen2_vl_smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return int(h), int(w)


@dataclass(frozen=True)
class ProcessedImage:
    """One image ready for the vision encoder.

    pixel_values: float32 [gh*gw, 3*p*p], raster order (merge_size 1) or merge-grouped (merge_size 2);
    grid_thw: (1, gh, gw); merge_size: 1 or 2 (also the RoPE position order the encoder must use).
    """

    pixel_values: np.ndarray
    grid_thw: tuple[int, int, int]
    merge_size: int = 1

    @property
    def size(self) -> tuple[int, int]:
        """Processed (height, width) in pixels."""
        return self.grid_thw[1] * PATCH_SIZE, self.grid_thw[2] * PATCH_SIZE

    @property
    def num_patches(self) -> int:
        return self.grid_thw[0] * self.grid_thw[1] * self.grid_thw[2]


def process_image(
    image: np.ndarray,
    max_pixels: int,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    patch_size: int = PATCH_SIZE,
    merge_size: int = 1,
    mean: tuple[float, float, float] = IMAGE_MEAN,
    std: tuple[float, float, float] = IMAGE_STD,
) -> ProcessedImage:
    """Resize (bicubic), rescale, normalise and patchify one HxWx3 uint8 RGB image (see the module docstring)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 uint8 RGB, got shape {image.shape} dtype {image.dtype}")
    h, w = image.shape[:2]
    factor = patch_size * merge_size
    th, tw = smart_resize(h, w, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    if (th, tw) != (h, w):
        image = np.asarray(Image.fromarray(image).resize((tw, th), resample=Image.Resampling.BICUBIC))
    x = (image.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = ((x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)).astype(np.float32)
    gh, gw = th // patch_size, tw // patch_size
    m, p = merge_size, patch_size
    # (C, gh/m, m, p, gw/m, m, p) -> (gh/m, gw/m, m, m, C, p, p): blocks in raster order, patches inside too.
    x = x.transpose(2, 0, 1).reshape(3, gh // m, m, p, gw // m, m, p).transpose(1, 4, 2, 5, 0, 3, 6)
    rows = np.ascontiguousarray(x.reshape(gh * gw, 3 * p * p), dtype=np.float32)
    return ProcessedImage(pixel_values=rows, grid_thw=(1, gh, gw), merge_size=merge_size)
