"""Packed object-token computation: batching invariance, global sharing, official-order equivalence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelrefer_core.model.crops_lite import process_objects
from pixelrefer_core.model.image_processing_pixelrefer import per_call_max_pixels, process_image
from pixelrefer_core.model.object_tokens import EncoderStats, ObjectTokenRequest, compute_object_tokens

from .conftest import box_mask, random_frames

H, W = 96, 128


def _request(seed=0, n_frames=2, generator_seed=None, frame_keys=None, empty=False):
    frames = random_frames(n_frames, H, W, seed=seed)
    masks = [box_mask(H, W, 10, 10, 70, 70), box_mask(H, W, 40, 60, 80, 120), box_mask(H, W, 20, 30, 60, 90)]
    if empty:
        masks[1] = np.zeros((H, W), bool)
    ids = [0, 0, n_frames - 1]
    gen = torch.Generator().manual_seed(generator_seed) if generator_seed is not None else None
    return ObjectTokenRequest(frames, np.stack(masks), ids, frame_keys=frame_keys, generator=gen)


def _official_order(vision, region, req, seed=0, round_bf16=False, reuse=False):
    """Reference §2.2: crops, globals (one per mask) and locals as three separate encoder calls."""
    saot = process_objects(req.frames, req.masks, req.mask_frame_ids, reuse_first_local_crop=reuse)
    max_px = per_call_max_pixels(len(saot.objects))

    def encode(images):
        procs = [process_image(im, max_pixels=max_px) for im in images]
        pix = torch.from_numpy(np.concatenate([p.pixel_values for p in procs]))
        if round_bf16:
            pix = pix.bfloat16().float()
        out = vision(pix, torch.tensor([p.grid_thw for p in procs]))
        return [
            (o, p.grid_thw) for o, p in zip(out.split([p.num_patches for p in procs]), procs, strict=True)
        ]

    crops = [f.view(g[1], g[2], -1) for f, g in encode([o.crop for o in saot.objects])]
    globs = [f for f, _ in encode([saot.global_images[o.frame_id] for o in saot.objects])]
    locs = [f for f, _ in encode([o.local_image for o in saot.objects])]
    grids = [torch.from_numpy(o.grid_mask) for o in saot.objects]
    return region(
        crops,
        grids,
        [o.box for o in saot.objects],
        [o.image_size for o in saot.objects],
        locs,
        globs,
        generator=torch.Generator().manual_seed(seed),
    )


def test_shapes_and_matches_official_three_call_order(tiny_encoder, tiny_region_encoder):
    req = _request(generator_seed=4)
    (tokens,) = compute_object_tokens(tiny_encoder, tiny_region_encoder, [req])
    assert tokens.shape == (3 * 32, 48)
    with torch.no_grad():
        ref = _official_order(tiny_encoder, tiny_region_encoder, _request(), seed=4)
    torch.testing.assert_close(tokens, ref, rtol=1e-4, atol=1e-5)


def test_packed_equals_separate_and_split_calls(tiny_encoder, tiny_region_encoder):
    def reqs():
        return [_request(seed=0), _request(seed=1, n_frames=1), _request(seed=2, empty=True)]

    alone = [compute_object_tokens(tiny_encoder, tiny_region_encoder, [r])[0] for r in reqs()]
    stats = EncoderStats()
    packed = compute_object_tokens(tiny_encoder, tiny_region_encoder, reqs(), stats=stats)
    split_stats = EncoderStats()
    split = compute_object_tokens(
        tiny_encoder, tiny_region_encoder, reqs(), max_encoder_patches=1500, stats=split_stats
    )
    assert stats.encoder_calls == 1 and split_stats.encoder_calls > 1
    assert stats.masks == 9 and stats.patches_encoded == split_stats.patches_encoded
    assert stats.flops == sum(stats.flops_per_call) > 0
    for a, p, s in zip(alone, packed, split, strict=True):
        assert p.shape == (96, 48)
        torch.testing.assert_close(p, a, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(s, a, rtol=1e-4, atol=1e-5)


def test_shared_frame_key_reuses_global_without_changing_results(tiny_encoder, tiny_region_encoder):
    keys = [("video", 0), ("video", 5)]
    shared_stats = EncoderStats()
    shared = compute_object_tokens(
        tiny_encoder,
        tiny_region_encoder,
        [_request(seed=0, frame_keys=keys), _request(seed=0, frame_keys=keys)],
        stats=shared_stats,
    )
    plain_stats = EncoderStats()
    plain = compute_object_tokens(
        tiny_encoder, tiny_region_encoder, [_request(seed=0), _request(seed=0)], stats=plain_stats
    )
    # Each request has 3 masks on 2 frames: 1 reuse inside a request; with keys the 2nd request reuses 2 more.
    assert plain_stats.globals_shared == 2 and shared_stats.globals_shared == 4
    assert shared_stats.images_encoded == plain_stats.images_encoded - 2
    for s, p in zip(shared, plain, strict=True):
        torch.testing.assert_close(s, p, rtol=1e-4, atol=1e-5)


def test_generator_controls_kmeans(tiny_encoder, tiny_region_encoder):
    def run(seed):
        return compute_object_tokens(tiny_encoder, tiny_region_encoder, [_request(generator_seed=seed)])[0]

    torch.testing.assert_close(run(1), run(1))
    assert not torch.allclose(run(1), run(2))
    default = compute_object_tokens(tiny_encoder, tiny_region_encoder, [_request()])[0]
    torch.testing.assert_close(default, run(0))  # None = a fresh generator seeded 0


def test_empty_mask_gives_finite_tokens_for_its_slot(tiny_encoder, tiny_region_encoder):
    (tokens,) = compute_object_tokens(tiny_encoder, tiny_region_encoder, [_request(empty=True)])
    assert tokens.shape == (96, 48) and torch.isfinite(tokens).all()
    (full,) = compute_object_tokens(tiny_encoder, tiny_region_encoder, [_request()])
    assert not torch.allclose(tokens[32:64], full[32:64])
    # Mask 0 is untouched (mask 2 is not compared: the empty mask draws no k-means init, so the
    # request's generator is at a different state when mask 2 clusters).
    torch.testing.assert_close(tokens[:32], full[:32], rtol=1e-4, atol=1e-5)
    # The empty mask has zero queries: its 32 tokens (after OCI) only depend on local/global views,
    # identical rows since every query row is the same zero vector.
    assert torch.allclose(tokens[32:64], tokens[32:33].expand(32, -1), atol=1e-5)


def test_parity_switches(tiny_encoder, tiny_region_encoder):
    base = compute_object_tokens(tiny_encoder, tiny_region_encoder, [_request()])[0]
    reused = compute_object_tokens(
        tiny_encoder, tiny_region_encoder, [_request()], reuse_first_local_crop=True
    )[0]
    torch.testing.assert_close(reused[:32], base[:32])  # first mask on frame 0 unchanged
    assert not torch.allclose(reused[32:64], base[32:64])  # second mask on frame 0 got mask 0's local crop
    with torch.no_grad():
        ref = _official_order(tiny_encoder, tiny_region_encoder, _request(), reuse=True)
    torch.testing.assert_close(reused, ref, rtol=1e-4, atol=1e-5)

    rounded = compute_object_tokens(
        tiny_encoder, tiny_region_encoder, [_request()], round_pixels_to_bf16=True
    )[0]
    assert not torch.equal(rounded, base)
    with torch.no_grad():
        ref = _official_order(tiny_encoder, tiny_region_encoder, _request(), round_bf16=True)
    torch.testing.assert_close(rounded, ref, rtol=1e-4, atol=1e-5)


def test_request_without_masks_and_bad_mask_num(tiny_encoder, tiny_region_encoder):
    empty = ObjectTokenRequest(random_frames(1, H, W), np.zeros((0, H, W), bool), [])
    out = compute_object_tokens(tiny_encoder, tiny_region_encoder, [empty, _request()])
    assert out[0].shape == (0, 48) and out[1].shape == (96, 48)
    with pytest.raises(ValueError, match="mask_num"):
        compute_object_tokens(tiny_encoder, tiny_region_encoder, [_request()], mask_num=16)
