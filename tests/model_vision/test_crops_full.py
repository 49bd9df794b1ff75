"""The full model's object crops and grid masks, hand-computed from the full reference §3 and §8."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelrefer_core.model.crops import crop_object, crop_objects, crop_scale, grid_mask
from pixelrefer_core.model.crops_lite import crop_scale as lite_crop_scale
from pixelrefer_core.model.errors import InputError

from .conftest import box_mask, random_frames

H, W = 100, 120


def test_crop_box_uses_the_clipped_ends_as_exclusive_slice_ends():
    frame = random_frames(1, H, W)[0]
    obj = crop_object(frame, box_mask(H, W, 40, 50, 60, 80))  # rows 40..59, cols 50..79, 600 px
    # top = 40-28 = 12, left = 50-28 = 22, bottom = min(99, 59+28) = 87, right = min(119, 79+28) = 107
    assert obj.box == (12, 22, 87, 107) and obj.image_size == (H, W)
    # crop 75 x 85 (27 px of context below/right, not 28); scale = ceil(sqrt(6272/600)) = ceil(3.23) = 4
    assert obj.scale == 4
    # ceil(75*4/14)*14 = 22*14 = 308, ceil(85*4/14)*14 = 25*14 = 350
    assert obj.crop.shape == (308, 350, 3) and obj.grid_mask.shape == (22, 25)
    assert obj.grid_mask.dtype == np.uint8 and set(np.unique(obj.grid_mask)) <= {0, 1}
    assert obj.num_tokens == 32  # min(32, cells)


def test_crop_is_clipped_at_the_frame_and_never_holds_the_last_row():
    frame = random_frames(1, H, W)[0]
    obj = crop_object(frame, box_mask(H, W, 90, 0, 100, 10))  # touches the bottom-left corner
    assert obj.box == (62, 0, 99, 37)  # bottom = min(H-1, 99+28) = 99, right = min(119, 9+28) = 37
    edge = crop_object(frame, box_mask(H, W, H - 1, 20, H, 70))  # only on the last row
    assert edge.box[2] == H - 1 and edge.num_tokens == 0  # the mask is outside its own crop: 0 tokens


@pytest.mark.parametrize(
    ("area", "full", "lite"),
    [
        (600, 4, 4),  # ceil(sqrt(10.45)) = 4 for both
        (6272, 1, 1),  # exactly one: sqrt(1.0)
        (6271, 2, 2),  # just below 6,272 px: 2
        # between 50*196 and 100*196: full keeps scale 1, Lite shrinks to 1/sqrt(51.02/50)
        (10000, 1, 1 / np.sqrt(10000 / 196 / 50)),
        (30000, 1 / np.sqrt(30000 / 196 / 100), 1 / np.sqrt(30000 / 196 / 50)),
    ],
)
def test_scale_thresholds_differ_between_the_variants(area, full, lite):
    assert crop_scale(area) == pytest.approx(full, rel=1e-6)
    assert lite_crop_scale(area) == pytest.approx(lite, rel=1e-6)


def test_grid_mask_is_the_uint8_kernel_not_a_rounded_float_resize():
    # 1-D 3 -> 2 (weights 0.75/0.25 and 0.25/0.75): [1, 0, 1] -> [0.75, 0.75] -> [1, 1]; [0, 1, 0] -> [0, 0]
    np.testing.assert_array_equal(grid_mask(np.array([[1, 0, 1]], np.uint8), 1, 2), [[1, 1]])
    np.testing.assert_array_equal(grid_mask(np.array([[0, 1, 0]], np.uint8), 1, 2), [[0, 0]])
    # exact 0.5 ties round up: [1, 0] -> 1 (half-to-even rounding of the float result would give 0)
    np.testing.assert_array_equal(grid_mask(np.array([[1, 0]], np.uint8), 1, 1), [[1]])
    # separable, each pass rounded: width pass [[1,0],[0,0]] -> [[1],[0]], height pass 0.5 -> 1; one float
    # bilinear step gives 0.25 -> 0
    single = np.array([[1, 0], [0, 0]], np.uint8)
    np.testing.assert_array_equal(grid_mask(single, 1, 1), [[1]])
    as_float = torch.nn.functional.interpolate(
        torch.tensor(single, dtype=torch.float32)[None, None],
        size=(1, 1),
        mode="bilinear",
        align_corners=False,
    )
    assert float(as_float) == 0.25


def test_masks_are_binarised_and_empty_or_misplaced_masks_are_named():
    frames = random_frames(2, H, W)
    m = box_mask(H, W, 30, 30, 50, 60)
    as_255 = crop_objects(frames, (m * 255).astype(np.uint8)[None], [1])[0]
    as_bool = crop_objects(frames, m[None], [1])[0]
    np.testing.assert_array_equal(as_255.grid_mask, as_bool.grid_mask)
    np.testing.assert_array_equal(as_255.crop, as_bool.crop)
    assert as_bool.frame_id == 1
    with pytest.raises(InputError, match="mask 1 .*empty"):
        crop_objects(frames, np.stack([m, np.zeros_like(m)]), [0, 1])
    with pytest.raises(InputError, match="mask 0: frame id 2 does not exist"):
        crop_objects(frames, m[None], [2])
    with pytest.raises(InputError, match="2 masks but 1 mask_frame_ids"):
        crop_objects(frames, np.stack([m, m]), [0])


def test_thin_lines_between_sample_points_give_zero_tokens_and_counts_cap_at_32():
    # 25 one-pixel lines of 269 px (6,725 px: scale 1) on rows 40 + 14k of a 405 x 309 frame: the crop is
    # rows 12..404 x cols 0..308 = 392 x 308, multiples of 14 (no resize), so grid cell (i, j) samples crop
    # rows 14i+6 and 14i+7 only; the lines sit on crop rows 28 + 14k: every cell is 0, and so are the tokens.
    h, w = 405, 309
    frame = random_frames(1, h, w)[0]
    lines = np.zeros((h, w), bool)
    lines[40:377:14, 20:289] = True
    assert lines.sum() == 6725
    obj = crop_object(frame, lines)
    assert obj.box == (12, 0, 404, 308) and obj.scale == 1 and obj.crop.shape == (392, 308, 3)
    assert obj.num_tokens == 0 and obj.grid_mask.shape == (28, 22)
    shifted = np.zeros((h, w), bool)  # same crop (first line on row 40), the others moved onto sampled rows
    shifted[40, 20:289] = True
    shifted[46:383:14, 20:289] = True
    moved = crop_object(frame, shifted)
    assert moved.box == obj.box and moved.scale == 1
    assert moved.grid_mask.sum() == 25 * 20 and moved.num_tokens == 32  # 25 grid rows x cols 1..20


def test_crop_budget_is_divided_by_the_number_of_masks():
    # Reference §3.4: a 3 x 3 px object gets scale 27 and a 1568 x 1568 crop (grid mask 112 x 112); with
    # N = 7 masks each crop may have 1,605,632 // 7 = 229,376 px, so the processor shrinks it to 476 x 476.
    from pixelrefer_core.model import PixelReferConfig
    from pixelrefer_core.model.processing_pixelrefer import prepare_region_inputs

    frame = random_frames(1, 200, 200)[0]
    masks = np.zeros((7, 200, 200), bool)
    for i in range(7):
        masks[i, 60 + 10 * i : 63 + 10 * i, 80:83] = True
    region = prepare_region_inputs([frame], masks, [0] * 7, PixelReferConfig())
    assert {c.scale for c in region.crops} == {27} and {c.crop.shape for c in region.crops} == {
        (1568, 1568, 3)
    }
    assert {c.grid_mask.shape for c in region.crops} == {(112, 112)}
    assert {img.size for img in region.images} == {(476, 476)}  # 34 x 34 features for a 112 x 112 grid
    per_crop = prepare_region_inputs([frame], masks, [0] * 7, PixelReferConfig(crop_budget="per_crop"))
    assert {img.size for img in per_crop.images} == {(1260, 1260)}  # the whole 1,605,632 px budget
