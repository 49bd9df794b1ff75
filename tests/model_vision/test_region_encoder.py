"""Region encoder: position quirk, masked pooling, k-means, OCI and the checkpoint key layout."""

from __future__ import annotations

import pytest
import torch

from pixelrefer_core.model.region_encoder import PixelReferLiteRegionEncoder as RegionEncoder
from pixelrefer_core.model.region_encoder import kmeans, masked_pool, position_tensor


def test_position_tensor_reproduces_axis_quirk():
    pos = position_tensor(2, 4, (10, 20, 50, 100), 200, 300)
    assert pos.shape == (2, 4, 2)
    # box_x = bottom - top = 40 is scaled by the *column* fraction and divided by W - 1 = 299;
    # box_y = right - left = 80 by the *row* fraction and divided by H - 1 = 199.
    torch.testing.assert_close(pos[0, 0], torch.tensor([10 / 299, 20 / 199]))
    torch.testing.assert_close(pos[1, 3], torch.tensor([(0.75 * 40 + 10) / 299, (0.5 * 80 + 20) / 199]))
    torch.testing.assert_close(pos[0, 3, 0], pos[1, 3, 0])  # channel 0 varies along columns only
    torch.testing.assert_close(pos[1, 0, 1], pos[1, 2, 1])  # channel 1 varies along rows only


def test_masked_pool_row_major_and_bilinear_resize():
    feat = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    mask = torch.tensor([[0.0, 0.3, 0.0], [1.0, 0.0, 0.2]])
    torch.testing.assert_close(masked_pool(feat, mask), feat[[0, 1, 1], [1, 0, 2]])
    # 4x4 features onto a 2x2 mask: bilinear (align_corners=False) halving = mean of each 2x2 block.
    feat4 = torch.randn(4, 4, 3)
    pooled = masked_pool(feat4, torch.ones(2, 2))
    blocks = feat4.view(2, 2, 2, 2, 3).mean(dim=(1, 3)).reshape(4, 3)
    torch.testing.assert_close(pooled, blocks)


def test_kmeans_init_order_and_convergence():
    tokens = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    for seed in range(6):
        g = torch.Generator().manual_seed(seed)
        init = tokens[torch.randperm(4, generator=torch.Generator().manual_seed(seed))[:2]]
        cents = kmeans(tokens, k=2, iters=3, generator=g)
        # Any init converges within 3 iterations; each centroid stays with its init token's cluster,
        # unless both init tokens were in one cluster, in which case both halves are still found.
        assert sorted(cents[:, 0].tolist()) == [0.5, 10.5]
        if (init[0, 0] < 5) != (init[1, 0] < 5):
            assert cents[0, 0] == (0.5 if init[0, 0] < 5 else 10.5)


def test_kmeans_is_reproducible_and_keeps_empty_clusters():
    x = torch.randn(100, 8, generator=torch.Generator().manual_seed(0))
    a = kmeans(x, 32, generator=torch.Generator().manual_seed(7))
    b = kmeans(x, 32, generator=torch.Generator().manual_seed(7))
    c = kmeans(x, 32, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    torch.testing.assert_close(kmeans(x, 32), kmeans(x, 32))  # default generator is seeded
    same = torch.ones(40, 4)
    out = kmeans(same, 32, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all() and torch.equal(out, torch.ones(32, 4))
    with pytest.raises(ValueError, match="at least k=32"):
        kmeans(x[:10], 32)


def test_object_queries_pad_cluster_and_empty(tiny_region_encoder):
    enc = tiny_region_encoder
    feat = torch.randn(6, 6, 32)
    few = torch.zeros(6, 6)
    few[1:3, 1:4] = 1  # 6 cells
    q = enc.object_queries(feat, few, (0, 0, 50, 50), (100, 100))
    assert q.shape == (32, 32)
    pos = enc.pos_linear(position_tensor(6, 6, (0, 0, 50, 50), 100, 100))
    torch.testing.assert_close(q[:6], (feat + pos)[1:3, 1:4].reshape(6, 32))
    assert not q[6:].any()
    many = torch.ones(6, 6)  # 36 cells > 32: k-means
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(
        enc.object_queries(feat, many, (0, 0, 5, 5), (9, 9), g1),
        enc.object_queries(feat, many, (0, 0, 5, 5), (9, 9), g2),
    )
    empty = enc.object_queries(torch.randn(4, 4, 32), torch.zeros(1, 1), (0, 0, 0, 0), (9, 9))
    assert empty.shape == (32, 32) and not empty.any()


def _reference_oci(enc, q, local, glob):
    """Per-mask OCI as written in reference §3 (standard MHA math path, need_weights=True)."""
    x = q + enc.fusion_attention_local(enc.ln_local(q), local, local)[0]
    return x + enc.fusion_attention_global(enc.ln_global(x), glob, glob)[0]


def test_forward_equals_per_mask_reference_with_mixed_lengths(tiny_region_encoder):
    enc = tiny_region_encoder
    torch.manual_seed(0)
    crops = [torch.randn(5, 7, 32), torch.randn(6, 6, 32), torch.randn(3, 4, 32)]
    grids = [torch.ones(5, 7), torch.rand(3, 3), torch.zeros(1, 1)]
    boxes = [(0, 0, 10, 10), (5, 5, 50, 40), (0, 0, 0, 0)]
    sizes = [(60, 80)] * 3
    locals_ = [torch.randn(16, 32), torch.randn(9, 32), torch.randn(16, 32)]
    globals_ = [torch.randn(36, 32), torch.randn(25, 32), torch.randn(36, 32)]
    with torch.no_grad():
        out = enc(crops, grids, boxes, sizes, locals_, globals_, generator=torch.Generator().manual_seed(5))
        g = torch.Generator().manual_seed(5)
        expected = []
        for m in range(3):
            q = enc.object_queries(crops[m], grids[m], boxes[m], sizes[m], g)
            fused = _reference_oci(enc, q[None], locals_[m][None], globals_[m][None])[0]
            expected.append(enc.feat_linear(fused))
    assert out.shape == (3 * 32, 48)
    torch.testing.assert_close(out, torch.cat(expected), rtol=1e-4, atol=1e-5)


def test_released_key_layout_on_meta():
    with torch.device("meta"):
        enc = RegionEncoder(1152, 1536)
    shapes = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert shapes == {
        "feat_linear.0.weight": (1536, 1152),
        "feat_linear.0.bias": (1536,),
        "feat_linear.2.weight": (1536, 1536),
        "feat_linear.2.bias": (1536,),
        "pos_linear.weight": (1152, 2),
        "pos_linear.bias": (1152,),
        "fusion_attention_local.in_proj_weight": (3456, 1152),
        "fusion_attention_local.in_proj_bias": (3456,),
        "fusion_attention_local.out_proj.weight": (1152, 1152),
        "fusion_attention_local.out_proj.bias": (1152,),
        "fusion_attention_global.in_proj_weight": (3456, 1152),
        "fusion_attention_global.in_proj_bias": (3456,),
        "fusion_attention_global.out_proj.weight": (1152, 1152),
        "fusion_attention_global.out_proj.bias": (1152,),
        "ln_local.weight": (1152,),
        "ln_local.bias": (1152,),
        "ln_global.weight": (1152,),
        "ln_global.bias": (1152,),
        "mask_embedding.weight": (1152, 1, 1, 1),
        "mask_embedding.bias": (1152,),
    }
    assert isinstance(enc.feat_linear[1], torch.nn.GELU) and enc.feat_linear[1].approximate == "none"
    assert enc.ln_local.eps == 1e-5 and enc.fusion_attention_local.num_heads == 8


def test_kmeans_assignment_in_chunks_equals_the_full_distance_matrix():
    from pixelrefer_core.model.region_encoder import _nearest_centroid

    g = torch.Generator().manual_seed(0)
    x, c = torch.randn(3000, 48, generator=g), torch.randn(32, 48, generator=g)
    full = ((x[:, None] - c[None]) ** 2).sum(-1).argmin(1)
    assert torch.equal(_nearest_centroid(x, c, max_elements=48 * 32 * 7), full)  # 7 rows per chunk
