"""DAMOVL-equivalent image processor: smart_resize rounding, per-call budget, normalisation, patch order."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixelrefer_core.model.image_processing_pixelrefer import per_call_max_pixels, process_image, smart_resize


def test_per_call_budget_divides_by_number_of_masks():
    assert per_call_max_pixels(1) == 1_605_632  # 6,422,528 / 2**2
    assert per_call_max_pixels(16) == 100_352
    assert per_call_max_pixels(3, total_max_pixels=1000, merge_size=1) == 333


@pytest.mark.parametrize(
    ("n_masks", "expected"),
    [(1, (336, 336)), (14, (336, 336)), (15, (322, 322)), (16, (308, 308))],
)
def test_global_336_shrinks_when_many_masks(n_masks, expected):
    # Reference §2.2: the 336x336 global is shrunk once N >= 15 (N=15 -> 322, N=16 -> 308).
    assert smart_resize(336, 336, max_pixels=per_call_max_pixels(n_masks)) == expected


def test_smart_resize_rounding_rules():
    assert smart_resize(98, 140) == (98, 140)  # multiples of 14 are kept
    # 28*28 < 3136: beta = sqrt(3136/440) = 2.67; ceil(53.4/14)*14 = 56, ceil(58.7/14)*14 = 70
    assert smart_resize(20, 22) == (56, 70)
    assert smart_resize(14, 14) == (56, 56)  # empty-mask crop
    assert smart_resize(100, 200) == (98, 196)  # round(7.14)=7, round(14.29)=14
    # Over budget: beta = sqrt(1596*1596 / 1605632); floor(1596 / beta / 14) * 14 = 1260.
    assert smart_resize(1596, 1596, max_pixels=1_605_632) == (1260, 1260)
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(14, 14 * 300)


def test_process_image_normalises_and_patchifies_in_raster_order():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (28, 42, 3), dtype=np.uint8)
    # 28*42 = 1176 < 3136 would upscale; lower min_pixels to keep the size for an exact check.
    out = process_image(img, max_pixels=10**6, min_pixels=14 * 14)
    assert out.grid_thw == (1, 2, 3) and out.size == (28, 42)
    assert out.pixel_values.shape == (6, 588) and out.pixel_values.dtype == np.float32
    norm = (img.astype(np.float64) / 255 - 0.5) / 0.5
    for row in range(6):
        r, c = divmod(row, 3)
        patch = norm[r * 14 : (r + 1) * 14, c * 14 : (c + 1) * 14].transpose(2, 0, 1).reshape(-1)
        np.testing.assert_allclose(out.pixel_values[row], patch, atol=1e-6)


def test_process_image_resizes_with_pil_bicubic():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = process_image(img, max_pixels=10**6)
    h, w = smart_resize(20, 30)
    assert out.size == (h, w) == (56, 70)
    resized = np.asarray(Image.fromarray(img).resize((w, h), Image.BICUBIC)).astype(np.float64)
    first = ((resized[:14, :14] / 255 - 0.5) / 0.5).transpose(2, 0, 1).reshape(-1)
    np.testing.assert_allclose(out.pixel_values[0], first, atol=1e-6)


def test_process_image_rejects_non_rgb_uint8():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        process_image(np.zeros((28, 28), dtype=np.uint8), max_pixels=10**6)
