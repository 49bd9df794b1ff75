"""Vision encoder: block-diagonal attention, 2-D RoPE, backends, checkpoint key layout."""

from __future__ import annotations

import pytest
import torch

from pixelrefer_core.model.configuration_vision import RELEASED_VISION_CONFIG, PixelReferVisionConfig
from pixelrefer_core.model.modeling_vision import (
    PixelReferVisionEncoder,
    apply_rotary_2d,
    block_attention,
    rope_positions,
)

GRIDS = [(1, 3, 4), (1, 5, 2), (1, 3, 4), (1, 1, 1), (1, 2, 6)]


def _dense_reference(q, k, v, seqlens):
    """Explicit masked softmax over the whole packed sequence."""
    n, heads, d = q.shape
    seg = torch.repeat_interleave(torch.arange(len(seqlens)), torch.tensor(seqlens))
    mask = seg[:, None] == seg[None, :]
    out = torch.zeros_like(q)
    for h in range(heads):
        s = (q[:, h] @ k[:, h].T) / d**0.5
        s = torch.where(mask, s, torch.full_like(s, float("-inf")))
        out[:, h] = torch.softmax(s, dim=-1) @ v[:, h]
    return out


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_block_attention_matches_dense_masked_softmax(impl):
    seqlens = [t * h * w for t, h, w in GRIDS]
    n = sum(seqlens)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(n, 2, 8, generator=g, dtype=torch.float64) for _ in range(3))
    cu = torch.tensor([0] + torch.tensor(seqlens).cumsum(0).tolist(), dtype=torch.int32)
    out = block_attention(q, k, v, cu, impl)
    torch.testing.assert_close(out, _dense_reference(q, k, v, seqlens), rtol=1e-10, atol=1e-10)


def test_rope_positions_are_raster_order():
    pos = rope_positions(torch.tensor([[1, 2, 3], [1, 1, 2]]))
    expected = [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2], [0, 0], [0, 1]]
    assert pos.tolist() == expected


def test_rope_layout_row_then_col_frequencies(tiny_encoder):
    rot = tiny_encoder.vision_encoder.rotary_pos_emb
    head_dim = 16  # 32 / 2 heads -> 8 channels per axis, 4 frequencies each
    assert rot.inv_freq.shape == (head_dim // 4,)
    torch.testing.assert_close(rot.inv_freq, 1.0 / 10000 ** (torch.arange(0, 8, 2).float() / 8))
    freqs = rot(torch.tensor([[2, 5]]))
    torch.testing.assert_close(freqs[0], torch.cat([2 * rot.inv_freq, 5 * rot.inv_freq]))
    # A vector with only channel 0 set and its rotate_half partner (channel 8) rotates by the row angle.
    x = torch.zeros(1, 1, head_dim)
    x[0, 0, 0] = 1.0
    y = apply_rotary_2d(x, freqs)
    ang = freqs[0, 0]
    assert torch.allclose(y[0, 0, 0], ang.cos()) and torch.allclose(y[0, 0, 8], ang.sin())


def test_rope_scores_depend_only_on_relative_offset():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 16, generator=g), torch.randn(1, 1, 16, generator=g)
    inv = 1.0 / 10000 ** (torch.arange(0, 8, 2).float() / 8)

    def f(r, c):
        return torch.cat([r * inv, c * inv])[None]

    a = (apply_rotary_2d(q, f(3, 1)) * apply_rotary_2d(k, f(1, 4))).sum()
    b = (apply_rotary_2d(q, f(7, 2)) * apply_rotary_2d(k, f(5, 5))).sum()
    c = (apply_rotary_2d(q, f(7, 2)) * apply_rotary_2d(k, f(5, 6))).sum()
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)


def _inputs(grids, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = sum(t * h * w for t, h, w in grids)
    return torch.randn(n, 3 * 14 * 14, generator=g), torch.tensor(grids)


def test_backends_agree_and_packing_is_invisible(tiny_config):
    torch.manual_seed(0)
    enc = PixelReferVisionEncoder(tiny_config).eval()
    pix, grid = _inputs(GRIDS)
    with torch.no_grad():
        sdpa = enc(pix, grid)
        enc.attn_implementation = "eager"
        eager = enc(pix, grid)
        enc.attn_implementation = "flash_attention_2"  # no flash_attn / CUDA here: falls back to sdpa
        flash = enc(pix, grid)
        enc.attn_implementation = "sdpa"
        alone = []
        start = 0
        for t, h, w in GRIDS:
            alone.append(enc(pix[start : start + t * h * w], torch.tensor([[t, h, w]])))
            start += t * h * w
    assert sdpa.shape == (pix.shape[0], 32)
    torch.testing.assert_close(sdpa, eager, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(sdpa, flash)
    torch.testing.assert_close(sdpa, torch.cat(alone), rtol=1e-4, atol=1e-5)


def test_images_do_not_attend_to_each_other(tiny_encoder):
    pix, grid = _inputs([(1, 2, 3), (1, 3, 3)])
    with torch.no_grad():
        a = tiny_encoder(pix, grid)
        pix2 = pix.clone()
        pix2[6:] = torch.randn(9, 588)  # change only the second image
        b = tiny_encoder(pix2, grid)
    torch.testing.assert_close(a[:6], b[:6])
    assert not torch.allclose(a[6:], b[6:])


def test_checkpoint_key_layout_full_size_on_meta():
    root = torch.nn.Module()
    root.model = torch.nn.Module()
    with torch.device("meta"):
        root.model.vision_encoder = PixelReferVisionEncoder(PixelReferVisionConfig(**RELEASED_VISION_CONFIG))
    sd = root.model.state_dict(prefix="model.")
    p = "model.vision_encoder.vision_encoder."
    expected = {p + "embeddings.patch_embedding.weight", p + "embeddings.patch_embedding.bias"}
    expected |= {p + f"post_layernorm.{s}" for s in ("weight", "bias")}
    for i in range(27):
        lp = f"{p}encoder.layers.{i}."
        for name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"):
            expected |= {f"{lp}{name}.weight", f"{lp}{name}.bias"}
        for name in ("layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"):
            expected |= {f"{lp}{name}.weight", f"{lp}{name}.bias"}
    assert set(sd) == expected
    assert sd[p + "embeddings.patch_embedding.weight"].shape == (1152, 3, 14, 14)
    assert sd[p + "encoder.layers.0.mlp.fc1.weight"].shape == (4304, 1152)


def test_rejects_mismatched_inputs(tiny_encoder):
    pix, grid = _inputs([(1, 2, 2)])
    with pytest.raises(ValueError, match="grid_thw covers 6 patches"):
        tiny_encoder(pix, torch.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match="pixel_values must be"):
        tiny_encoder(pix[:, :100], grid)
    with pytest.raises(ValueError, match="attn_implementation"):
        PixelReferVisionEncoder(PixelReferVisionConfig(), attn_implementation="xformers")
