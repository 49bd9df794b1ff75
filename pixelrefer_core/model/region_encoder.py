"""Region encoders: masked pooling + k-means (SAOT) and the token MLP; OCI for PixelRefer-Lite.

PixelRefer-Lite (`PixelReferLiteRegionEncoder`, Lite reference §2.4, §3, §2.5). Per mask: `feat [h, w, C]` (vision features of the scaled crop) + `pos_linear(position_tensor(...))`,
bilinearly resized to the grid mask when the sizes differ, cells with mask > 0 taken in row-major order,
reduced to `mask_num` centroids by k-means when there are more, zero-padded at the end to `mask_num`.
Then, batched over masks: x = q + MHA_local(LN_local(q), local, local); x = x + MHA_global(LN_global(x),
glob, glob); tokens = feat_linear(x) -> [M * mask_num, D].

Module names match the released state_dict (`model.region_encoder.*`); `mask_embedding` is unused but
kept so the checkpoint loads without unexpected keys.

PixelRefer (`PixelReferRegionEncoder`, full reference §4): per mask, `feat + pos_linear(position)` in the
model dtype, then float32: bilinear resize to the uint8 grid mask when the sizes differ, the valid cells'
features in raster order, k-means to `mask_num` (5 iterations, the converging update discarded) when
there are more; 0..mask_num tokens per mask, no padding, no OCI; all masks' tokens -> `feat_linear`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PixelReferLiteRegionEncoder",
    "PixelReferRegionEncoder",
    "kmeans",
    "masked_pool",
    "position_tensor",
]


def position_tensor(
    h: int,
    w: int,
    box: Sequence[int],
    H: int,
    W: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Relative position of each feature cell, [h, w, 2], with the official axis mix-up (§2.4 step 2).

    box = (top, left, bottom, right) inclusive; H, W = frame size. With box_x = bottom - top and
    box_y = right - left: channel 0 at (i, j) = ((j / w) * box_x + top) / (W - 1) and
    channel 1 at (i, j) = ((i / h) * box_y + left) / (H - 1). (Column index scales the box *height* and is
    divided by the frame *width*; the trained `pos_linear` expects exactly this.)
    """
    top, left, bottom, right = (float(v) for v in box)
    box_x, box_y = bottom - top, right - left
    j = torch.arange(w, device=device, dtype=torch.float32) / w
    i = torch.arange(h, device=device, dtype=torch.float32) / h
    c0 = ((j * box_x + top) / (W - 1)).expand(h, w)
    c1 = ((i * box_y + left) / (H - 1))[:, None].expand(h, w)
    return torch.stack([c0, c1], dim=-1).to(dtype)


def masked_pool(feat: torch.Tensor, grid_mask: torch.Tensor) -> torch.Tensor:
    """Tokens of the cells inside the mask: feat [h, w, C], grid_mask [gh, gw] -> [n, C], row-major.

    When (h, w) != (gh, gw) the features are bilinearly resized (align_corners=False) to the mask grid.
    """
    gh, gw = grid_mask.shape
    if feat.shape[:2] != (gh, gw):
        x = feat.permute(2, 0, 1)[None]
        x = F.interpolate(x, size=(gh, gw), mode="bilinear", align_corners=False)
        feat = x[0].permute(1, 2, 0)
    valid = grid_mask > 0
    return feat[valid.to(feat.device)]


def _nearest_centroid(x: torch.Tensor, c: torch.Tensor, max_elements: int = 1 << 24) -> torch.Tensor:
    """argmin_j ||x_i - c_j||^2 for x [n, C], c [k, C], by exact differences (as the official code), in row
    chunks so the [rows, k, C] difference tensor stays under `max_elements` (a 1260 px crop of a tiny
    object has ~8,100 cells: unchunked that is ~1.2 GB at the released width)."""
    rows = max(1, max_elements // max(1, c.shape[0] * c.shape[1]))
    return torch.cat(
        [
            ((x[s : s + rows, None, :] - c[None]) ** 2).sum(-1).argmin(dim=1)
            for s in range(0, x.shape[0], rows)
        ]
    )


def kmeans(
    tokens: torch.Tensor,
    k: int = 32,
    iters: int = 3,
    generator: torch.Generator | None = None,
    keep_converging_update: bool = True,
) -> torch.Tensor:
    """Lloyd k-means with a random-subset init; returns [k, C] centroids in init order.

    Init: tokens[torch.randperm(n, generator=generator)[:k]]. `generator=None` uses a fresh generator
    seeded 0 (reproducible by default; the official code draws from the unseeded global RNG).
    Each iteration: squared-L2 assignment (argmin, ties to the lowest index), centroid = mean of its
    members, an empty cluster keeps its centroid; stops early when the centroids move less than atol 1e-6,
    returning the new centroids (`keep_converging_update`, Lite) or the previous ones (the full model's
    `kmeans_fast`, reference §4.1). Requires n >= k.
    """
    n = tokens.shape[0]
    if n < k:
        raise ValueError(f"kmeans needs at least k={k} tokens, got {n}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    perm = torch.randperm(n, generator=generator, device=generator.device)
    centroids = tokens[perm[:k].to(tokens.device)]
    x = tokens.float()
    for _ in range(iters):
        c = centroids.float()
        labels = _nearest_centroid(x, c)
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)[:, None]
        new = torch.where(counts > 0, sums / counts.clamp_min(1), c).to(tokens.dtype)
        done = torch.allclose(centroids, new, atol=1e-6)
        if done and not keep_converging_update:
            break
        centroids = new
        if done:
            break
    return centroids


class PixelReferLiteRegionEncoder(nn.Module):
    """SAOT pooling + OCI + token MLP. Submodule names follow the released checkpoint.

    vision_hidden_size: C (1152 released); llm_hidden_size: D (1536 for 2B, 3584 for 7B);
    num_heads: OCI attention heads (8); mask_num: tokens per mask (32).
    """

    def __init__(self, vision_hidden_size: int, llm_hidden_size: int, num_heads: int = 8, mask_num: int = 32):
        super().__init__()
        self.vision_hidden_size = vision_hidden_size
        self.llm_hidden_size = llm_hidden_size
        self.mask_num = mask_num
        self.feat_linear = nn.Sequential(
            nn.Linear(vision_hidden_size, llm_hidden_size),
            nn.GELU(),
            nn.Linear(llm_hidden_size, llm_hidden_size),
        )
        self.pos_linear = nn.Linear(2, vision_hidden_size)
        self.fusion_attention_local = nn.MultiheadAttention(vision_hidden_size, num_heads, batch_first=True)
        self.fusion_attention_global = nn.MultiheadAttention(vision_hidden_size, num_heads, batch_first=True)
        self.ln_local = nn.LayerNorm(vision_hidden_size)
        self.ln_global = nn.LayerNorm(vision_hidden_size)
        self.mask_embedding = nn.Conv2d(1, vision_hidden_size, kernel_size=1)  # unused; checkpoint key

    def object_queries(
        self,
        feat: torch.Tensor,
        grid_mask: torch.Tensor | np.ndarray,
        box: Sequence[int],
        image_size: tuple[int, int],
        generator: torch.Generator | None = None,
        kmeans_iters: int = 3,
    ) -> torch.Tensor:
        """One mask's `mask_num` query tokens [mask_num, C] from its crop features feat [h, w, C].

        Position term added at feature resolution, then masked pooling, k-means when more than
        `mask_num` cells are valid, zero padding at the end otherwise.
        """
        h, w = feat.shape[:2]
        pos = position_tensor(h, w, box, image_size[0], image_size[1], device=feat.device, dtype=feat.dtype)
        feat = feat + self.pos_linear(pos)
        grid = torch.as_tensor(np.asarray(grid_mask) if not torch.is_tensor(grid_mask) else grid_mask)
        tokens = masked_pool(feat, grid)
        if tokens.shape[0] > self.mask_num:
            tokens = kmeans(tokens, self.mask_num, kmeans_iters, generator)
        if tokens.shape[0] < self.mask_num:
            tokens = F.pad(tokens, (0, 0, 0, self.mask_num - tokens.shape[0]))
        return tokens

    def fuse(self, queries: torch.Tensor, local: torch.Tensor, glob: torch.Tensor) -> torch.Tensor:
        """OCI: queries [M, mask_num, C], local [M, Ll, C], glob [M, Lg, C] -> [M, mask_num, C]."""
        q = self.ln_local(queries)
        x = queries + self.fusion_attention_local(q, local, local, need_weights=False)[0]
        q = self.ln_global(x)
        return x + self.fusion_attention_global(q, glob, glob, need_weights=False)[0]

    def forward(
        self,
        crop_feats: Sequence[torch.Tensor],
        grid_masks: Sequence[torch.Tensor | np.ndarray],
        boxes: Sequence[Sequence[int]],
        image_sizes: Sequence[tuple[int, int]],
        local_feats: Sequence[torch.Tensor],
        global_feats: Sequence[torch.Tensor],
        generator: torch.Generator | None = None,
        generators: Sequence[torch.Generator | None] | None = None,
    ) -> torch.Tensor:
        """Object tokens [M * mask_num, D] for M masks, mask-major.

        crop_feats[m]: [h, w, C]; local_feats[m]: [Ll, C]; global_feats[m]: [Lg, C] (lengths may differ
        between masks: OCI runs once per group of equal (Ll, Lg)). k-means draws its random inits in
        mask order from `generator` (or per mask from `generators[m]`, to share one generator per request
        across several calls). With neither given a fresh generator seeded 0 is used.
        """
        m_count = len(crop_feats)
        if m_count == 0:
            return torch.zeros(0, self.llm_hidden_size, dtype=self.pos_linear.weight.dtype)
        if generators is None:
            gen = generator if generator is not None else torch.Generator().manual_seed(0)
            generators = [gen] * m_count
        queries = torch.stack(
            [
                self.object_queries(crop_feats[m], grid_masks[m], boxes[m], image_sizes[m], generators[m])
                for m in range(m_count)
            ]
        )
        fused = torch.empty_like(queries)
        groups: dict[tuple[int, int], list[int]] = {}
        for m in range(m_count):
            groups.setdefault((local_feats[m].shape[0], global_feats[m].shape[0]), []).append(m)
        for idx in groups.values():
            sel = torch.tensor(idx, device=queries.device)
            loc = torch.stack([local_feats[m] for m in idx])
            glo = torch.stack([global_feats[m] for m in idx])
            fused[sel] = self.fuse(queries[sel], loc, glo)
        return self.feat_linear(fused.reshape(-1, self.vision_hidden_size))


# The full model's k-means runs 5 iterations (Lite: 3).
FULL_KMEANS_ITERATIONS = 5


class PixelReferRegionEncoder(nn.Module):
    """The full model's region encoder: `pos_linear` + masked pooling / k-means + `feat_linear`.

    vision_hidden_size: C (1152 released); llm_hidden_size: D; mask_num: most tokens per mask (32).
    Submodule names follow the released checkpoint (`model.region_encoder.{pos_linear,feat_linear.0,2}`).
    """

    def __init__(self, vision_hidden_size: int, llm_hidden_size: int, mask_num: int = 32):
        super().__init__()
        self.vision_hidden_size = vision_hidden_size
        self.llm_hidden_size = llm_hidden_size
        self.mask_num = mask_num
        self.feat_linear = nn.Sequential(
            nn.Linear(vision_hidden_size, llm_hidden_size),
            nn.GELU(),
            nn.Linear(llm_hidden_size, llm_hidden_size),
        )
        self.pos_linear = nn.Linear(2, vision_hidden_size)

    def object_queries(
        self,
        feat: torch.Tensor,
        grid_mask: torch.Tensor | np.ndarray,
        box: Sequence[int],
        image_size: tuple[int, int],
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """float32 [n, C] (n <= mask_num) pooled tokens of one mask from its crop features feat [h, w, C].

        The position term is computed in float32, cast to the model dtype, projected and added in the model
        dtype (as the official code), then everything runs in float32 (§4 steps 1-5).
        """
        h, w = feat.shape[:2]
        pos = position_tensor(h, w, box, image_size[0], image_size[1], device=feat.device)
        weight = self.pos_linear.weight
        feat = (feat.to(weight.dtype) + self.pos_linear(pos.to(weight.dtype))).float()
        grid = torch.as_tensor(np.asarray(grid_mask) if not torch.is_tensor(grid_mask) else grid_mask)
        gh, gw = grid.shape
        if (h, w) != (gh, gw):
            x = F.interpolate(
                feat.permute(2, 0, 1)[None], size=(gh, gw), mode="bilinear", align_corners=False
            )
            feat = x[0].permute(1, 2, 0)
        valid = (grid.to(feat.device) > 0) & feat.ne(0).any(dim=-1)
        tokens = feat[valid]
        if tokens.shape[0] > self.mask_num:
            tokens = kmeans(
                tokens, self.mask_num, FULL_KMEANS_ITERATIONS, generator, keep_converging_update=False
            )
        return tokens

    def forward(
        self,
        crop_feats: Sequence[torch.Tensor],
        grid_masks: Sequence[torch.Tensor | np.ndarray],
        boxes: Sequence[Sequence[int]],
        image_sizes: Sequence[tuple[int, int]],
        generators: Sequence[torch.Generator | None] | None = None,
    ) -> tuple[torch.Tensor, list[int]]:
        """(object tokens [sum n_i, D] in mask order, n_i per mask) for the masks' crop features [h_i, w_i, C].

        k-means draws its random inits in mask order from `generators[i]` (one generator shared by a request's
        masks reproduces the official draw order); None = a fresh generator seeded 0 for all masks.
        """
        count = len(crop_feats)
        weight = self.pos_linear.weight  # feat_linear has the same dtype and device
        if count == 0:
            return torch.zeros(0, self.llm_hidden_size, dtype=weight.dtype, device=weight.device), []
        if generators is None:
            gen = torch.Generator().manual_seed(0)
            generators = [gen] * count
        per_mask = [
            self.object_queries(crop_feats[i], grid_masks[i], boxes[i], image_sizes[i], generators[i])
            for i in range(count)
        ]
        tokens: torch.Tensor = self.feat_linear(torch.cat(per_mask).to(weight.dtype))
        return tokens, [int(t.shape[0]) for t in per_mask]
