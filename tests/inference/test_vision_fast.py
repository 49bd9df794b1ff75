"""The vision encoder's fast path: the document block mask built from the packing's boundaries, the fused
layer math and FlexAttention against the modules (fp32, CPU), the per-thread switch; on CUDA (marker
`gpu`) varlen / flex / compiled bf16 against the standard path."""

from __future__ import annotations

import threading

import pytest
import torch

from pixelrefer_core.model.configuration_vision import PixelReferVisionConfig
from pixelrefer_core.model.modeling_vision import PixelReferVisionEncoder
from pixelrefer_core.model.vision_attention import (
    VisionFastPath,
    current_fast_path,
    document_block_mask,
    resolve_attention,
    vision_fast_path,
)

PACKINGS = [
    [20, 9, 400, 14, 144],  # a last block cut short inside one image
    [128, 128, 256],  # images exactly on block boundaries: full tiles only
    [1],
    [300, 5, 700, 129, 1, 1, 64],
]


@pytest.mark.parametrize("lengths", PACKINGS)
def test_document_block_mask_equals_torchs_dense_construction(lengths):
    from torch.nn.attention.flex_attention import create_block_mask

    total = sum(lengths)
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    doc = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    want = create_block_mask(lambda b, h, q, k: doc[q] == doc[k], None, None, total, total, device="cpu")
    got = document_block_mask(cu, "cpu")
    assert torch.equal(got.to_dense(), want.to_dense())  # the tiles visited
    assert torch.equal(got.full_kv_num_blocks, want.full_kv_num_blocks)  # which of them skip the mask
    assert torch.equal(got.kv_num_blocks, want.kv_num_blocks)


@pytest.fixture(scope="module")
def encoder_and_batch():
    torch.manual_seed(0)
    cfg = PixelReferVisionConfig(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2)
    enc = PixelReferVisionEncoder(cfg).eval()
    grid = torch.tensor([[1, 4, 5], [1, 3, 3], [1, 20, 20], [1, 2, 7], [1, 12, 12]])
    pix = torch.randn(int(grid.prod(1).sum()), 3 * 14 * 14)
    with torch.no_grad():
        ref = enc(pix, grid)
    return enc, pix, grid, ref


@pytest.mark.parametrize(
    "options",
    [VisionFastPath("sdpa", fused=True), VisionFastPath("flex", fused=True), VisionFastPath("flex", fused=False),
     VisionFastPath("eager", fused=True), VisionFastPath("auto"), VisionFastPath("varlen", compile=True)],
)
def test_fast_path_options_compute_the_standard_features(encoder_and_batch, options):
    enc, pix, grid, ref = encoder_and_batch
    with torch.no_grad(), vision_fast_path(options):
        out = enc(pix, grid)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_fused_layers_are_the_modules_math(encoder_and_batch):
    """The fused path is not the module path run twice: break its qkv order and the features change."""
    enc, pix, grid, ref = encoder_and_batch
    layer = enc.vision_encoder.encoder.layers[0].self_attn
    w = layer.k_proj.weight.data.clone()
    try:
        layer.k_proj.weight.data.copy_(layer.q_proj.weight.data)
        with torch.no_grad(), vision_fast_path(VisionFastPath("sdpa", fused=True)):
            broken = enc(pix, grid)
    finally:
        layer.k_proj.weight.data.copy_(w)
    assert not torch.allclose(broken, ref, atol=1e-3)


def test_auto_and_unavailable_choices_resolve_per_device():
    cpu = torch.device("cpu")
    assert resolve_attention("auto", cpu, torch.float32, "sdpa") == "sdpa"
    assert resolve_attention("auto", cpu, torch.bfloat16, "eager") == "eager"
    assert resolve_attention("varlen", cpu, torch.bfloat16, "sdpa") == "sdpa"  # flash kernels are CUDA-only
    assert resolve_attention("flex", cpu, torch.float32, "sdpa") == "flex"
    with pytest.raises(ValueError, match="unknown"):
        VisionFastPath("xformers")


def test_fast_path_switch_is_per_thread():
    seen = {}
    with vision_fast_path(VisionFastPath("flex")):
        t = threading.Thread(target=lambda: seen.setdefault("other", current_fast_path()))
        t.start()
        t.join()
        seen["here"] = current_fast_path()
    assert seen["other"] is None and seen["here"] == VisionFastPath("flex")
    assert current_fast_path() is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("options", [VisionFastPath("varlen"), VisionFastPath("flex"),
                                     VisionFastPath("varlen", compile=True), VisionFastPath("flex", compile=True)])
def test_cuda_fast_path_matches_the_standard_path_in_bf16(encoder_and_batch, options):
    enc, pix, grid, _ = encoder_and_batch
    enc = enc.to("cuda", torch.bfloat16)
    try:
        x = pix.to("cuda", torch.bfloat16)
        with torch.no_grad():
            ref = enc(x, grid).float()
            with vision_fast_path(options):
                out = enc(x, grid).float()
        assert ((out - ref).norm() / ref.norm()).item() < 2e-2
    finally:
        enc.to("cpu", torch.float32)


def test_a_failing_fast_attention_is_recorded_and_the_next_choice_gives_the_same_features(encoder_and_batch,
                                                                                         monkeypatch):
    import pixelrefer_core.model.modeling_vision as modeling_vision
    import pixelrefer_core.model.vision_attention as vision_attention

    monkeypatch.setattr(vision_attention, "_FAILED", {})  # this process's record, restored afterwards
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("no kernel for this shape")

    monkeypatch.setattr(modeling_vision, "flex_block_attention", broken)
    enc, pix, grid, ref = encoder_and_batch
    with torch.no_grad():
        with vision_fast_path(VisionFastPath("flex", strict=True)), pytest.raises(RuntimeError, match="no kernel"):
            enc(pix, grid)
        assert vision_attention.fast_path_failures() == {}  # strict: raised, nothing recorded
        with vision_fast_path(VisionFastPath("flex")):
            out = enc(pix, grid)
            assert "flex" in vision_attention.fast_path_failures()
            n = len(calls)
            again = enc(pix, grid)  # not tried again
    assert len(calls) == n
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(again, ref, atol=1e-5)
