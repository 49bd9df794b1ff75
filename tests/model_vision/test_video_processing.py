"""The full model's image/video preprocessing: budgets, merge-grouped rows and their RoPE positions (full
reference §2.2, §2.3), hand-computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelrefer_core.model.image_processing_pixelrefer import per_call_max_pixels, process_image, smart_resize
from pixelrefer_core.model.modeling_vision import rope_positions


@pytest.mark.parametrize(
    ("n", "d", "size", "expected", "tokens"),
    [
        (1, 1, (1080, 1920), (938, 1680), 67 * 120),  # image: 8040 tokens
        (16, 2, (1080, 1920), (448, 840), 32 * 60 // 4),  # video, T = 16: 480 tokens per frame
        (180, 2, (1080, 1920), (140, 224), 10 * 16 // 4),  # video, T = 180: 40 tokens per frame
    ],
)
def test_budgets_and_sizes_of_the_reference_table(n, d, size, expected, tokens):
    max_px = per_call_max_pixels(n, downsampling=d)
    assert max_px == (1_605_632 if d == 1 else 6_422_528) // n
    h, w = smart_resize(*size, factor=14 * d, max_pixels=max_px)
    assert (h, w) == expected
    assert (h // 14) * (w // 14) // d**2 == tokens


def test_a_side_below_one_factor_scales_the_image_up_first():
    # 10 x 30 with factor 28: scaled by 28/10 to 28 x 84 first, then the usual rounding
    assert smart_resize(10, 30, factor=28, min_pixels=28 * 28, max_pixels=10**6) == (28, 84)


def test_video_rows_are_merge_grouped():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (56, 84, 3), dtype=np.uint8)  # 4 x 6 patches, multiples of 28: no resize
    raster = process_image(img, max_pixels=10**6, merge_size=1)
    grouped = process_image(img, max_pixels=10**6, merge_size=2)
    assert grouped.grid_thw == raster.grid_thw == (1, 4, 6) and grouped.merge_size == 2
    gw = 6
    for r in range(4):
        for c in range(6):
            row = ((r // 2) * (gw // 2) + c // 2) * 4 + (r % 2) * 2 + c % 2  # reference §2.2 step 5
            np.testing.assert_array_equal(grouped.pixel_values[row], raster.pixel_values[r * gw + c])


def test_rope_positions_follow_the_row_order():
    grid = torch.tensor([[1, 2, 4], [1, 1, 2]])
    pos = rope_positions(grid, merge_sizes=[2, 1]).tolist()
    assert pos[:8] == [[0, 0], [0, 1], [1, 0], [1, 1], [0, 2], [0, 3], [1, 2], [1, 3]]
    assert pos[8:] == [[0, 0], [0, 1]]
    with pytest.raises(ValueError, match="merge-grouped"):
        rope_positions(torch.tensor([[1, 3, 4]]), merge_sizes=[2])


def test_encoding_merge_grouped_rows_equals_encoding_raster_rows_reordered(tiny_encoder):
    # RoPE positions travel with the rows, so the same image in either row order gives the same features.
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (56, 84, 3), dtype=np.uint8)
    raster = process_image(img, max_pixels=10**6, merge_size=1)
    grouped = process_image(img, max_pixels=10**6, merge_size=2)
    grid = torch.tensor([raster.grid_thw])
    with torch.no_grad():
        a = tiny_encoder(torch.from_numpy(raster.pixel_values), grid)
        b = tiny_encoder(torch.from_numpy(grouped.pixel_values), grid, merge_sizes=[2])
        wrong = tiny_encoder(torch.from_numpy(grouped.pixel_values), grid)  # raster positions on grouped rows
    order = [((r // 2) * 3 + c // 2) * 4 + (r % 2) * 2 + c % 2 for r in range(4) for c in range(6)]
    torch.testing.assert_close(b[order], a, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(wrong[order], a, atol=1e-3)
