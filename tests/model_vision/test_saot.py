"""SAOT dynamic object processing, checked against numbers worked out by hand from reference §2.1."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pixelrefer_core.model.crops_lite import crop_scale, process_objects

from .conftest import box_mask, random_frames

H, W = 120, 160


@pytest.fixture
def frame():
    return random_frames(1, H, W)[0]


def test_tiny_mask_is_scaled_up(frame):
    # 3x3 mask at rows 50..52, cols 70..72: msum 9 -> scale ceil(sqrt(6272/9)) = ceil(26.4) = 27.
    # Context: top 22, left 42, bottom_excl 81, right_excl 101 -> 59x59 crop.
    # Target side: ceil(59 * 27 / 14) * 14 = 114 * 14 = 1596; grid 114x114; upscale -> INTER_LINEAR.
    mask = box_mask(H, W, 50, 70, 53, 73)
    obj = process_objects([frame], mask[None], [0]).objects[0]
    assert obj.scale == 27
    assert obj.box == (22, 42, 80, 100)
    assert obj.crop.shape == (1596, 1596, 3)
    assert obj.grid_mask.shape == (114, 114) and obj.grid_mask.dtype == np.float32
    context = frame[22:81, 42:101]
    np.testing.assert_array_equal(obj.crop, cv2.resize(context, (1596, 1596), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(
        obj.local_image, cv2.resize(context, (224, 224), interpolation=cv2.INTER_AREA)
    )
    # Object pixels are rows/cols 28..30 of the 59-px crop. Cell c samples (c + 0.5) * 59/114 - 0.5,
    # which lies strictly inside (27, 31) for c = 53..60: those cells (and only those) are > 0.
    expected = np.zeros((114, 114), bool)
    expected[53:61, 53:61] = True
    np.testing.assert_array_equal(obj.grid_mask > 0, expected)
    assert obj.image_size == (H, W) and obj.frame_id == 0 and not obj.empty


def test_mask_on_border_clips_context(frame):
    # 10x10 mask in the top-right corner: msum 100 -> scale ceil(sqrt(62.72)) = 8.
    # Context: top max(0,-28)=0, left 122, bottom_excl 38, right_excl min(160,188)=160 -> 38x38.
    # Target: ceil(38 * 8 / 14) * 14 = 22 * 14 = 308.
    mask = box_mask(H, W, 0, 150, 10, 160)
    obj = process_objects([frame], mask[None], [0]).objects[0]
    assert obj.scale == 8
    assert obj.box == (0, 122, 37, 159)
    assert obj.crop.shape == (308, 308, 3)
    assert obj.grid_mask.shape == (22, 22)


def test_huge_mask_is_shrunk(frame):
    # 100x150 mask: msum 15000, 15000/196 = 76.5 > 50 and ceil(sqrt(6272/15000)) = 1
    # -> scale = 1/sqrt(76.53/50) = 0.8083. Context covers the frame (120x160).
    # Target: ceil(120*0.8083/14)*14 = 7*14 = 98, ceil(160*0.8083/14)*14 = 10*14 = 140; both smaller -> INTER_AREA.
    mask = box_mask(H, W, 10, 5, 110, 155)
    obj = process_objects([frame], mask[None], [0]).objects[0]
    assert obj.scale == pytest.approx(0.80829, abs=1e-4)
    assert obj.box == (0, 0, 119, 159)
    assert obj.crop.shape == (98, 140, 3)
    np.testing.assert_array_equal(obj.crop, cv2.resize(frame, (140, 98), interpolation=cv2.INTER_AREA))
    assert obj.grid_mask.shape == (7, 10)


def test_scale_rule_boundaries():
    assert crop_scale(6272) == 1  # exactly 32 patches of area
    assert crop_scale(6271) == 2
    assert crop_scale(50 * 196) == 1  # not above 50 patches: no shrink
    assert crop_scale(50 * 196 + 1) < 1
    assert crop_scale(0) == 80  # empty: max(msum, 1) -> ceil(sqrt(6272)) = 80
    assert crop_scale(30000, large_object_threshold=100) == pytest.approx(1 / np.sqrt(30000 / 196 / 100))


def test_empty_mask(frame):
    out = process_objects([frame], np.zeros((1, H, W), bool), [0])
    obj = out.objects[0]
    assert obj.empty and obj.box == (0, 0, 0, 0)
    assert obj.crop.shape == (14, 14, 3) and not obj.crop.any()
    assert obj.grid_mask.shape == (1, 1) and obj.grid_mask[0, 0] == 0
    np.testing.assert_array_equal(
        obj.local_image, cv2.resize(frame, (224, 224), interpolation=cv2.INTER_AREA)
    )


def test_global_image_per_frame_and_local_crop_switch():
    frames = random_frames(2, H, W, seed=3)
    masks = np.stack(
        [box_mask(H, W, 10, 10, 40, 40), box_mask(H, W, 60, 90, 100, 150), box_mask(H, W, 5, 5, 50, 50)]
    )
    fixed = process_objects(frames, masks, [0, 0, 1])
    assert sorted(fixed.global_images) == [0, 1]
    for fid in (0, 1):
        expected = cv2.resize(frames[fid], (336, 336), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(fixed.global_images[fid], expected)
    assert not np.array_equal(fixed.objects[0].local_image, fixed.objects[1].local_image)
    parity = process_objects(frames, masks, [0, 0, 1], reuse_first_local_crop=True)
    # Official bug: the second mask on frame 0 gets the first mask's local crop; frame 1 is unaffected.
    np.testing.assert_array_equal(parity.objects[1].local_image, fixed.objects[0].local_image)
    np.testing.assert_array_equal(parity.objects[2].local_image, fixed.objects[2].local_image)
    np.testing.assert_array_equal(parity.objects[1].crop, fixed.objects[1].crop)


def test_bad_inputs_are_named():
    frames = random_frames(1, H, W)
    with pytest.raises(ValueError, match="one frame id per mask"):
        process_objects(frames, np.zeros((2, H, W), bool), [0])
    with pytest.raises(ValueError, match="frame id 3"):
        process_objects(frames, np.zeros((1, H, W), bool), [3])
    with pytest.raises(ValueError, match="mask 0 has shape"):
        process_objects(frames, np.zeros((1, H, W + 1), bool), [0])


def test_accepts_torch_masks(frame):
    import torch

    mask = box_mask(H, W, 30, 40, 70, 90)
    from_np = process_objects([frame], mask[None], [0]).objects[0]
    from_torch = process_objects([frame], torch.from_numpy(mask[None].astype(np.uint8)), [0]).objects[0]
    np.testing.assert_array_equal(from_np.crop, from_torch.crop)
    np.testing.assert_array_equal(from_np.grid_mask, from_torch.grid_mask)
