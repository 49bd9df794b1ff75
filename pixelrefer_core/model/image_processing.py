"""DAMOVL image processor equivalent: resize to a multiple of 14, normalise, cut into patch rows (§2.2).

Conventions: images are HxWx3 uint8 RGB numpy arrays. Output rows hold 3*14*14 = 588 float32 values in
(C, 14, 14) order, rows in raster order over the patch grid, `grid_thw = (1, gh, gw)`.

Rounding rules (Qwen2-VL `smart_resize`, which the DAMOVL processor reuses):
1. round each side to the nearest multiple of `factor` (Python `round`, half to even);
2. if the area then exceeds `max_pixels`, scale both sides by beta = sqrt(h*w / max_pixels) and round
   *down* to a multiple of `factor` (never below `factor`);
3. elif it is below `min_pixels`, scale by beta = sqrt(min_pixels / (h*w)) and round *up*.
Resizing uses PIL BICUBIC on the uint8 image (what transformers' `resize(..., resample=3)` does), skipped
when the size is unchanged (PIL returns a copy then); then x * (1/255) in float64 -> float32, then
(x - 0.5) / 0.5.

Budget quirk (§8.6): the official processor is called once per list (crops, globals, locals) with
`num_images` = the number of masks, and gives each image `max_pixels = int(int(total / merge**2) // n)`
with total = 8192 * (2**2 * 14**2) = 6,422,528 and merge = 2, i.e. 1,605,632 // n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = [
    "DEFAULT_MIN_PIXELS",
    "DEFAULT_TOTAL_MAX_PIXELS",
    "IMAGE_MEAN",
    "IMAGE_STD",
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
    num_images: int, total_max_pixels: int = DEFAULT_TOTAL_MAX_PIXELS, merge_size: int = DEFAULT_MERGE_SIZE
) -> int:
    """Per-image pixel cap of one processor call over `num_images` images (the official formula)."""
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    return int(int(total_max_pixels / (merge_size / 1) ** 2) // num_images)


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
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of {height}x{width} exceeds 200")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class ProcessedImage:
    """One image ready for the vision encoder.

    pixel_values: float32 [gh*gw, 3*p*p], raster order; grid_thw: (1, gh, gw); size: processed (h, w) px.
    """

    pixel_values: np.ndarray
    grid_thw: tuple[int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        return self.grid_thw[1] * PATCH_SIZE, self.grid_thw[2] * PATCH_SIZE

    @property
    def num_patches(self) -> int:
        return self.grid_thw[0] * self.grid_thw[1] * self.grid_thw[2]


def process_image(
    image: np.ndarray,
    max_pixels: int,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    patch_size: int = PATCH_SIZE,
    mean: tuple[float, float, float] = IMAGE_MEAN,
    std: tuple[float, float, float] = IMAGE_STD,
) -> ProcessedImage:
    """Resize (bicubic), rescale, normalise and patchify one HxWx3 uint8 RGB image."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 uint8 RGB, got shape {image.shape} dtype {image.dtype}")
    h, w = image.shape[:2]
    th, tw = smart_resize(h, w, factor=patch_size, min_pixels=min_pixels, max_pixels=max_pixels)
    if (th, tw) != (h, w):
        image = np.asarray(Image.fromarray(image).resize((tw, th), resample=Image.Resampling.BICUBIC))
    x = (image.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = ((x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)).astype(np.float32)
    gh, gw = th // patch_size, tw // patch_size
    x = x.transpose(2, 0, 1).reshape(3, gh, patch_size, gw, patch_size).transpose(1, 3, 0, 2, 4)
    rows = np.ascontiguousarray(x.reshape(gh * gw, 3 * patch_size * patch_size), dtype=np.float32)
    return ProcessedImage(pixel_values=rows, grid_thw=(1, gh, gw))
