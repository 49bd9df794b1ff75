"""The full PixelRefer on the tiny profile: vision tokens (downsampling, compression), object tokens, and
forward / generate taking the multimodal inputs. Expected values are computed by hand or independently."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelrefer_core.inference import describe_one
from pixelrefer_core.model import PixelReferProcessor
from pixelrefer_core.model.processing_pixelrefer import prepare_region_inputs, prepare_visual_inputs
from pixelrefer_core.model.region_encoder import kmeans, position_tensor
from pixelrefer_core.model.tiny import build_tiny_model

from .conftest import scene


@pytest.fixture(scope="module")
def full():
    return build_tiny_model(seed=0, model_kind="full")


def _static_video(n_changed: int) -> list[np.ndarray]:
    """Three 56 x 56 frames (2 x 2 merged tokens of 28 x 28 px, no resize): frame 1 = frame 0 with
    `n_changed` of the 2352 values of its top-right merged token (index 1) raised by one grey level;
    frame 2 = frame 1."""
    rng = np.random.default_rng(0)
    f0 = rng.integers(10, 240, (56, 56, 3), dtype=np.uint8)
    f1 = f0.copy()
    block = f1[:28, 28:].reshape(-1)
    block[:n_changed] += 1
    f1[:28, 28:] = block.reshape(28, 28, 3)
    return [f0, f1, f1.copy()]


@pytest.mark.parametrize(
    ("n_changed", "kept_in_frame_1"), [(118, [False, True, False, False]), (117, [True, False, False, False])]
)
def test_compression_threshold_by_hand(full, n_changed, kept_in_frame_1):
    # One grey level is 2/255 in normalised units: mean |diff| * 255 = 2 * n / 2352 > 0.1 <=> n >= 118.
    # With 117 nothing of frame 1 is kept, so it keeps its first merged token.
    model, _ = full
    visual = prepare_visual_inputs(_static_video(n_changed), [0.0, 1.0, 2.0], model.config)
    assert visual.tokens_per_frame == 4 and visual.merge_size == 2
    keep = model.compression_keep(visual).view(3, 4)
    assert keep[0].all()
    assert keep[1].tolist() == kept_in_frame_1
    assert keep[2].tolist() == [True, False, False, False]  # nothing changed: the first token stays


def test_compression_threshold_decides_by_the_rule(full):
    model, _ = full
    visual = prepare_visual_inputs(_static_video(118), [0.0, 1.0, 2.0], model.config)
    first_two = [f.pixel_values for f in visual.frames][:2]
    x = torch.from_numpy(np.stack(first_two)).reshape(2, 4, -1)
    diff = (x[1] - x[0]).abs().mean(-1) * 255
    assert diff[1] > 0.1 > diff[1] * 117 / 118 and float(diff[[0, 2, 3]].abs().max()) == 0.0
    moved = _static_video(118)
    moved[2] = moved[0].copy()  # frame 2 changes the top-right token back
    moved[2][28:, 28:] = 0  # ... and the bottom-right one
    keep = model.compression_keep(prepare_visual_inputs(moved, [0.0, 1.0, 2.0], model.config)).view(3, 4)
    assert keep[1].tolist() == [False, True, False, False] and keep[2].tolist() == [False, True, False, True]


def test_video_tokens_are_2x2_means_of_merge_grouped_rows_then_projected(full):
    model, _ = full
    frames = _static_video(0)
    frames[1] = np.ascontiguousarray(frames[1][::-1])  # differs everywhere: nothing compressed away
    visual = prepare_visual_inputs(frames[:2], [0.0, 0.5], model.config)
    features = model.get_visual_features(visual)
    with torch.no_grad():
        rows = model.model.vision_encoder(
            torch.from_numpy(np.concatenate([f.pixel_values for f in visual.frames])),
            torch.tensor([f.grid_thw for f in visual.frames]),
            merge_sizes=[2, 2],
        )
        means = rows.view(-1, 4, rows.shape[-1]).mean(dim=1)  # 4 consecutive merge-grouped rows
        expected = model.model.mm_projector(means)
    assert features.keep.all() and features.tokens.shape == (8, 64)
    torch.testing.assert_close(features.tokens, expected, rtol=1e-5, atol=1e-5)


def test_image_tokens_are_not_downsampled_nor_compressed(full):
    model, _ = full
    frame = np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    assert model.visual_tokens([frame]).shape == (4 * 6, 64)  # 56 x 84 at stride 1: 4 x 6 patches
    assert model.visual_tokens([frame, frame], timestamps=[0, 1]).shape == (6 + 1, 64)  # 2 x 3 merged, + 1


def _two_cell_mask() -> tuple[list[np.ndarray], np.ndarray]:
    """A 405 x 309 frame whose mask has exactly 2 grid cells set (see test_crops_full: 25 one-pixel lines on
    rows the 14x14 grid never samples, plus a 21-px line on a sampled row covering cells 1 and 2)."""
    frames = [np.random.default_rng(3).integers(0, 256, (405, 309, 3), dtype=np.uint8)]
    mask = np.zeros((1, 405, 309), bool)
    mask[0, 40:377:14, 20:289] = True
    mask[0, 46, 20:41] = True
    return frames, mask


def test_object_tokens_count_varies_per_mask_without_padding(full):
    model, _ = full
    frames, masks = scene(2, h=60, w=80)
    masks[1] = False
    masks[1, 59, 10:60] = True  # last row only: 0 tokens
    region = prepare_region_inputs(frames, masks, [0, 1], model.config)
    assert region.tokens_per_mask == (32, 0)
    tokens = model.object_tokens(frames, masks, [0, 1])
    assert tokens.shape == (32, 64)
    sparse_frames, sparse = _two_cell_mask()
    assert prepare_region_inputs(sparse_frames, sparse, [0], model.config).tokens_per_mask == (2,)
    assert model.object_tokens(sparse_frames, sparse, [0]).shape == (2, 64)


def test_few_cells_are_the_tokens_themselves(full):
    # n <= 32 valid cells: no k-means, tokens = feat_linear(features + pos_linear(position)) at those cells.
    model, _ = full
    frames, mask = _two_cell_mask()
    region = prepare_region_inputs(frames, mask, [0], model.config)
    crop, image = region.crops[0], region.images[0]
    with torch.no_grad():
        feats = model.model.vision_encoder(
            torch.from_numpy(image.pixel_values), torch.tensor([image.grid_thw])
        )
        _, gh, gw = image.grid_thw
        feats = feats.view(gh, gw, -1)
        feats = feats + model.model.region_encoder.pos_linear(position_tensor(gh, gw, crop.box, 405, 309))
        if (gh, gw) != crop.grid_mask.shape:
            feats = F.interpolate(
                feats.permute(2, 0, 1)[None], size=crop.grid_mask.shape, mode="bilinear", align_corners=False
            )[0].permute(1, 2, 0)
        expected = model.model.region_encoder.feat_linear(feats[torch.from_numpy(crop.grid_mask) > 0])
    torch.testing.assert_close(model.object_tokens(frames, mask, [0]), expected, rtol=1e-5, atol=1e-5)


def _lloyd(x, init, iters):
    """Plain Lloyd iterations, written independently; stops (keeping the old centroids) when converged."""
    c = init.clone()
    for _ in range(iters):
        labels = torch.stack([((x - ci) ** 2).sum(-1) for ci in c], dim=1).argmin(dim=1)
        new = torch.stack([x[labels == j].mean(0) if (labels == j).any() else c[j] for j in range(len(c))])
        if torch.allclose(c, new, atol=1e-6):
            return c
        c = new
    return c


def test_full_kmeans_is_five_lloyd_iterations_from_a_randperm_init():
    g = torch.Generator().manual_seed(0)
    x = torch.cumsum(torch.randn(1000, 2, generator=g), dim=0)  # a random walk: slow to converge
    init = x[torch.randperm(1000, generator=torch.Generator().manual_seed(5))[:32]]
    got = kmeans(x, 32, 5, torch.Generator().manual_seed(5), keep_converging_update=False)
    torch.testing.assert_close(got, _lloyd(x, init, 5))
    assert not torch.allclose(got, _lloyd(x, init, 4))


def test_the_processor_output_drives_forward_and_generate(full):
    model, tok = full
    frames, masks = scene(2, h=56, w=84)
    processor = PixelReferProcessor(tok, model.config)
    question = "<video>What is <region> doing?"
    a = processor(frames, question, masks[:1], [0], timestamps=[0.0, 0.5])
    b = processor(frames, question, masks[1:], [1], timestamps=[0.0, 0.5])
    with torch.no_grad():
        out_a, out_b = model(**a), model(**b)
    assert out_a.object_tokens.shape[0] == 32 and out_a.visual_tokens is not None
    assert not torch.allclose(out_a.logits[0, -1], out_b.logits[0, -1])  # the regions reach the LLM
    ids = model.generate(**a, max_new_tokens=6, do_sample=False, repetition_penalty=1.1)[0].tolist()
    one, _ = describe_one(
        model, tok, frames, masks[:1], [0], question, timestamps=[0.0, 0.5], max_new_tokens=6
    )
    assert ids[: len(one)] == one


def test_a_seeded_generator_reproduces_the_official_global_rng_draws():
    # The official code calls torch.randperm(n) on the global CPU generator, once per mask with n > 32, in
    # mask order; one torch.Generator seeded alike and shared by the masks draws the same permutations.
    g = torch.Generator().manual_seed(11)
    masks = [torch.cumsum(torch.randn(n, 3, generator=g), dim=0) for n in (90, 40, 200)]
    torch.manual_seed(1234)
    official = [_lloyd(x, x[torch.randperm(x.shape[0])[:32]], 5) for x in masks]
    ours = torch.Generator().manual_seed(1234)
    for x, want in zip(masks, official, strict=True):
        torch.testing.assert_close(kmeans(x, 32, 5, ours, keep_converging_update=False), want)
