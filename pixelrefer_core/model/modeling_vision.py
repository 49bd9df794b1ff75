"""The vision encoder of both variants: SigLIP-NaViT with 2-D RoPE over variable-size images (Lite
reference §2.3, full reference §2.3).

Input is a packed batch: every image is cut into 14x14 patches, each patch is one row of
`num_channels * 14 * 14` values in (C, 14, 14) order, images one after the other. `grid_thw[i] = (t, h, w)`
gives image i's patch grid; `merge_sizes[i]` its row order: 1 = raster order over the patch grid (images,
crops), 2 = merge-grouped (the full model's video frames: 2x2 blocks in raster order, patches inside a
block in raster order). RoPE positions are the (row, col) of each row in that order.
Attention is block-diagonal: a patch only attends to patches of its own image (implementations in
`block_attention` and `vision_attention`; the packing they need is computed once per pass).

Fast path (`vision_attention.vision_fast_path`, set by the describe engine on CUDA): the attention
implementation chosen per device ("auto": PyTorch's varlen flash attention, else FlexAttention), the layer
math as functions of the weights with one qkv product (`fused_layer_forward`, the same math as the
modules), optionally `torch.compile`d with dynamic shapes (one compiled graph serves every layer and
every packing).

State-dict layout (checkpoint compatible, when attached as `model.vision_encoder`):
`vision_encoder.embeddings.patch_embedding.*`, `vision_encoder.encoder.layers.{i}.{self_attn,layer_norm1,
layer_norm2,mlp}.*`, `vision_encoder.post_layernorm.*`. The RoPE `inv_freq` is a non-persistent buffer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN

from .configuration_vision import PixelReferVisionConfig
from .vision_attention import (
    PackedSequences,
    current_fast_path,
    fast_path_failures,
    flex_block_attention,
    pack_sequences,
    record_failure,
    resolve_attention,
    varlen_block_attention,
)

__all__ = [
    "ATTN_IMPLEMENTATIONS",
    "PixelReferVisionEncoder",
    "VisionRotaryEmbedding",
    "VisionTransformer",
    "apply_rotary_2d",
    "block_attention",
    "fused_layer_forward",
    "rope_positions",
]

logger = logging.getLogger(__name__)

ATTN_IMPLEMENTATIONS = ("sdpa", "flash_attention_2", "eager", "varlen", "flex")


def _flash_attn_varlen() -> Callable[..., torch.Tensor] | None:
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None
    fn: Callable[..., torch.Tensor] = flash_attn_varlen_func
    return fn


def rope_positions(grid_thw: torch.Tensor, merge_sizes: Sequence[int] | None = None) -> torch.Tensor:
    """(row, col) patch coordinates of every packed row, in each image's row order: Long [total_patches, 2]."""
    pos = []
    sizes = list(merge_sizes) if merge_sizes is not None else [1] * len(grid_thw)
    if len(sizes) != len(grid_thw):
        raise ValueError(f"{len(sizes)} merge sizes for {len(grid_thw)} images")
    for (t, h, w), m in zip(grid_thw.tolist(), sizes, strict=True):
        if h % m or w % m:
            raise ValueError(f"a {h}x{w} patch grid cannot be merge-grouped by {m}")
        rows = torch.arange(h)[:, None].expand(h, w)
        cols = torch.arange(w)[None, :].expand(h, w)
        if m > 1:  # merge-grouped: (h/m, m, w/m, m) -> (h/m, w/m, m, m)
            rows = rows.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3)
            cols = cols.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3)
        pos.append(torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=-1).repeat(t, 1))
    if not pos:
        return torch.zeros(0, 2, dtype=torch.long)
    return torch.cat(pos).to(grid_thw.device)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary_2d(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate x [N, heads, head_dim] by freqs [N, head_dim // 2] (row freqs then col freqs).

    cos/sin are duplicated to head_dim and applied with rotate_half, in float32; result in x's dtype.
    """
    return _rotate(x, *_cos_sin(freqs))


def _cos_sin(freqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 cos/sin [N, 1, 2 * freqs.shape[1]] (computed once per forward, shared by all layers)."""
    return freqs.cos().repeat(1, 2)[:, None, :], freqs.sin().repeat(1, 2)[:, None, :]


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    return (xf * cos + _rotate_half(xf) * sin).to(x.dtype)


def rope_inv_freq(dim: int, theta: float) -> torch.Tensor:
    """float32 [dim // 2] inverse frequencies theta^(-2i/dim) of one axis of the 2-D RoPE."""
    return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))


class VisionRotaryEmbedding(nn.Module):
    """Frequencies of a 2-D RoPE: `dim = head_dim // 2` channels per axis, `dim // 2` frequencies each."""

    inv_freq: torch.Tensor

    def __init__(self, dim: int, theta: float = 10000.0):
        super().__init__()
        self.register_buffer("inv_freq", rope_inv_freq(dim, theta), persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """positions Long [N, 2] (row, col) -> freqs float32 [N, dim] = cat(row * inv_freq, col * inv_freq)."""
        inv = self.inv_freq.float()
        return torch.cat([positions[:, 0:1].float() * inv, positions[:, 1:2].float() * inv], dim=-1)


def block_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    implementation: str = "sdpa",
    packed: PackedSequences | None = None,
) -> torch.Tensor:
    """Block-diagonal softmax attention over packed sequences.

    q, k, v: [N, heads, head_dim]; cu_seqlens: Int [n_seq + 1] cumulative lengths (0 first, N last).
    Returns [N, heads, head_dim]. Scale is head_dim ** -0.5, no dropout. `packed`: the packing as
    `vision_attention.pack_sequences` built it for this implementation (built here when None).
    - "eager": one dense [heads, N, N] score matrix with the off-block entries masked (reference only).
    - "sdpa": sequences of equal length are gathered into one [B, heads, L, d] batch per length and run
      through `F.scaled_dot_product_attention` without a mask; memory O(sum L^2), never O(N^2).
    - "varlen": PyTorch's varlen flash attention (CUDA + fp16/bf16, torch >= 2.9; the caller checks).
    - "flex": FlexAttention with a document block mask (compiled on CUDA).
    - "flash_attention_2": `flash_attn_varlen_func` (CUDA + fp16/bf16 only; the caller checks).
    """
    n, heads, d = q.shape
    scale = d**-0.5
    if n == 0:
        return torch.empty_like(q)
    if implementation == "flash_attention_2":
        fn = _flash_attn_varlen()
        if fn is None:
            raise RuntimeError("flash_attention_2 requested but flash_attn is not installed")
        cu = cu_seqlens.to(device=q.device, dtype=torch.int32)
        max_len = int((cu[1:] - cu[:-1]).max().item()) if cu.numel() > 1 else 0
        return fn(q, k, v, cu, cu, max_len, max_len, softmax_scale=scale)
    if implementation == "eager":
        cu_list = cu_seqlens.tolist()
        seg_id = torch.zeros(n, dtype=torch.long, device=q.device)
        for i in range(len(cu_list) - 1):
            seg_id[cu_list[i] : cu_list[i + 1]] = i
        allowed = seg_id[:, None] == seg_id[None, :]
        ct = torch.promote_types(q.dtype, torch.float32)
        scores = torch.einsum("qhd,khd->hqk", q.to(ct), k.to(ct)) * scale
        scores = scores.masked_fill(~allowed, float("-inf"))
        probs = scores.softmax(dim=-1)
        return torch.einsum("hqk,khd->qhd", probs, v.to(ct)).to(q.dtype)
    if implementation not in ("sdpa", "varlen", "flex"):
        raise ValueError(
            f"attention implementation {implementation!r} is unknown; use one of {ATTN_IMPLEMENTATIONS}"
        )
    if packed is None or packed.implementation != implementation:
        packed = pack_sequences(cu_seqlens, implementation, q.device)
    if implementation == "varlen":
        return varlen_block_attention(q, k, v, packed)
    if implementation == "flex":
        return flex_block_attention(q, k, v, packed)
    out = torch.empty_like(q)
    for length, idx in packed.groups:
        b = idx.numel() // length
        qs, ks, vs = (t.index_select(0, idx).view(b, length, heads, d).transpose(1, 2) for t in (q, k, v))
        o = F.scaled_dot_product_attention(qs, ks, vs, scale=scale)
        out.index_copy_(0, idx, o.transpose(1, 2).reshape(-1, heads, d))
    return out


class VisionAttention(nn.Module):
    def __init__(self, config: PixelReferVisionConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        if self.head_dim * self.num_heads != config.hidden_size:
            raise ValueError(
                f"hidden_size {config.hidden_size} is not divisible by num_attention_heads {config.num_attention_heads}"
            )
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self,
        x: torch.Tensor,
        cu_seqlens: torch.Tensor,
        rope_cos_sin: tuple[torch.Tensor, torch.Tensor],
        implementation: str,
        packed: PackedSequences | None = None,
    ) -> torch.Tensor:
        n = x.shape[0]
        q = self.q_proj(x).view(n, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(n, self.num_heads, self.head_dim)
        v = self.v_proj(x).view(n, self.num_heads, self.head_dim)
        q = _rotate(q, *rope_cos_sin)
        k = _rotate(k, *rope_cos_sin)
        o = block_attention(q, k, v, cu_seqlens, implementation, packed)
        return self.out_proj(o.reshape(n, -1))


class VisionMLP(nn.Module):
    def __init__(self, config: PixelReferVisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(self.act(self.fc1(x)))
        return out


class VisionEncoderLayer(nn.Module):
    """Pre-LN block: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, config: PixelReferVisionConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = VisionAttention(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = VisionMLP(config)

    def forward(
        self,
        x: torch.Tensor,
        cu_seqlens: torch.Tensor,
        rope_cos_sin: tuple[torch.Tensor, torch.Tensor],
        implementation: str,
        packed: PackedSequences | None = None,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x), cu_seqlens, rope_cos_sin, implementation, packed)
        return x + self.mlp(self.layer_norm2(x))


# The fused path's activation per `hidden_act` (F.gelu's `approximate`): the modules' ACT2FN functions.
_GELU_APPROXIMATE = {"gelu_pytorch_tanh": "tanh", "gelu": "none"}


def fused_layers_supported(config: PixelReferVisionConfig) -> bool:
    """The fused layer math covers this config's activation (the released SigLIP's tanh GELU does)."""
    return config.hidden_act in _GELU_APPROXIMATE


def _attention_inputs(
    x: torch.Tensor,
    ln_w: torch.Tensor,
    ln_b: torch.Tensor,
    eps: float,
    wq: torch.Tensor,
    bq: torch.Tensor,
    wk: torch.Tensor,
    bk: torch.Tensor,
    wv: torch.Tensor,
    bv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    heads: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LayerNorm 1, one [3C, C] product for q, k, v, RoPE on q and k: [N, heads, head_dim] each."""
    n = x.shape[0]
    h = F.layer_norm(x, (x.shape[-1],), ln_w, ln_b, eps)
    qkv = F.linear(h, torch.cat([wq, wk, wv]), torch.cat([bq, bk, bv]))
    q, k, v = qkv.view(n, 3, heads, -1).unbind(1)
    return _rotate(q, cos, sin).contiguous(), _rotate(k, cos, sin).contiguous(), v.contiguous()


def _attention_output_and_mlp(
    x: torch.Tensor,
    o: torch.Tensor,
    wo: torch.Tensor,
    bo: torch.Tensor,
    ln_w: torch.Tensor,
    ln_b: torch.Tensor,
    eps: float,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    approximate: str,
) -> torch.Tensor:
    """x + out_proj(o), then x + fc2(gelu(fc1(LayerNorm 2(x))))."""
    x = x + F.linear(o.reshape(x.shape[0], -1), wo, bo)
    h = F.layer_norm(x, (x.shape[-1],), ln_w, ln_b, eps)
    return x + F.linear(F.gelu(F.linear(h, w1, b1), approximate=approximate), w2, b2)


_COMPILED: dict[str, Callable[..., Any]] = {}


def _compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`torch.compile(fn, dynamic=True)`, once per process: the weights are arguments, so one graph serves
    every layer, and the patch count is symbolic, so every packing reuses it."""
    name = fn.__name__
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=True)
    return _COMPILED[name]


def fused_layer_forward(
    layer: VisionEncoderLayer,
    x: torch.Tensor,
    cu_seqlens: torch.Tensor,
    rope_cos_sin: tuple[torch.Tensor, torch.Tensor],
    implementation: str,
    packed: PackedSequences | None,
    hidden_act: str = "gelu_pytorch_tanh",
    compiled: bool = False,
) -> torch.Tensor:
    """`layer(x, ...)` as two functions of its weights around the attention (the same math, one qkv
    product; `hidden_act` one of `_GELU_APPROXIMATE`); `compiled` (CUDA only) runs them through
    `torch.compile`. Attention stays outside the
    compiled graphs, so any implementation (varlen, flex, sdpa) can sit between them."""
    attn, mlp = layer.self_attn, layer.mlp
    ln1, ln2 = layer.layer_norm1, layer.layer_norm2
    pre, post = _attention_inputs, _attention_output_and_mlp
    if compiled and x.device.type == "cuda":
        pre, post = _compiled(_attention_inputs), _compiled(_attention_output_and_mlp)
    q, k, v = pre(
        x, ln1.weight, ln1.bias, ln1.eps, attn.q_proj.weight, attn.q_proj.bias, attn.k_proj.weight,
        attn.k_proj.bias, attn.v_proj.weight, attn.v_proj.bias, *rope_cos_sin, attn.num_heads,
    )
    o = block_attention(q, k, v, cu_seqlens, implementation, packed)
    out: torch.Tensor = post(
        x, o, attn.out_proj.weight, attn.out_proj.bias, ln2.weight, ln2.bias, ln2.eps, mlp.fc1.weight,
        mlp.fc1.bias, mlp.fc2.weight, mlp.fc2.bias, _GELU_APPROXIMATE[hidden_act],
    )
    return out


class VisionEmbeddings(nn.Module):
    def __init__(self, config: PixelReferVisionConfig):
        super().__init__()
        self.num_channels = config.num_channels
        self.patch_size = config.patch_size
        self.patch_embedding = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        w = self.patch_embedding.weight
        x = pixel_values.to(dtype=w.dtype).view(-1, self.num_channels, self.patch_size, self.patch_size)
        out: torch.Tensor = self.patch_embedding(x)
        return out.view(x.shape[0], -1)


class VisionEncoderStack(nn.Module):
    def __init__(self, config: PixelReferVisionConfig):
        super().__init__()
        self.layers = nn.ModuleList(VisionEncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(
        self,
        x: torch.Tensor,
        cu_seqlens: torch.Tensor,
        rope_cos_sin: tuple[torch.Tensor, torch.Tensor],
        implementation: str,
        packed: PackedSequences | None = None,
    ) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, cu_seqlens, rope_cos_sin, implementation, packed)
        return x


class VisionTransformer(nn.Module):
    """The NaViT transformer proper (held as `.vision_encoder` by `PixelReferVisionEncoder`)."""

    def __init__(self, config: PixelReferVisionConfig):
        super().__init__()
        self.config = config
        self.embeddings = VisionEmbeddings(config)
        self.encoder = VisionEncoderStack(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        head_dim = config.hidden_size // config.num_attention_heads
        self.rotary_pos_emb = VisionRotaryEmbedding(head_dim // 2, theta=config.rope_theta)

    def forward(
        self,
        pixel_values: torch.Tensor,
        grid_thw: torch.Tensor,
        implementation: str,
        merge_sizes: Sequence[int] | None = None,
        fused: bool = False,
        compiled: bool = False,
    ) -> torch.Tensor:
        seqlens = grid_thw[:, 0] * grid_thw[:, 1] * grid_thw[:, 2]
        cu_seqlens = F.pad(seqlens.cumsum(0), (1, 0)).to(torch.int32)
        freqs = self.rotary_pos_emb(rope_positions(grid_thw.cpu(), merge_sizes).to(pixel_values.device))
        x = self.embeddings(pixel_values)
        cos_sin = _cos_sin(freqs)
        packed = None
        if implementation in ("sdpa", "varlen", "flex"):
            packed = pack_sequences(cu_seqlens, implementation, x.device)
        if fused and fused_layers_supported(self.config):
            for layer in cast(Sequence[VisionEncoderLayer], self.encoder.layers):
                x = fused_layer_forward(
                    layer, x, cu_seqlens, cos_sin, implementation, packed, self.config.hidden_act, compiled
                )
        else:
            x = self.encoder(x, cu_seqlens, cos_sin, implementation, packed)
        out: torch.Tensor = self.post_layernorm(x)
        return out


class PixelReferVisionEncoder(nn.Module):
    """Checkpoint-compatible wrapper: `self.vision_encoder` is the NaViT transformer.

    forward(pixel_values [total_patches, C*p*p], grid_thw Long [n_images, 3], merge_sizes=None (all 1))
    -> [total_patches, hidden], rows in the input order.
    `attn_implementation`: "sdpa" (default), "flash_attention_2" (used when flash_attn imports, the
    tensors are on CUDA and in fp16/bf16; otherwise falls back to sdpa with one log line), "varlen"
    (PyTorch's varlen flash attention, same fallback), "flex" (FlexAttention) or "eager".
    Inside `vision_attention.vision_fast_path(options)` the options' attention, fused layers and compile
    apply instead (the describe engine's GPU fast path).
    """

    def __init__(self, config: PixelReferVisionConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        if attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(
                f"attn_implementation {attn_implementation!r} is unknown; use one of {ATTN_IMPLEMENTATIONS}"
            )
        self.config = config
        self.attn_implementation = attn_implementation
        self.vision_encoder = VisionTransformer(config)
        self._warned_fallback = False

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    def _resolve_implementation(self, x: torch.Tensor, impl: str) -> str:
        weight_dtype = self.vision_encoder.embeddings.patch_embedding.weight.dtype
        if impl == "varlen":
            return resolve_attention("varlen", x.device, weight_dtype, "sdpa")
        if impl != "flash_attention_2":
            return impl
        reason = None
        if _flash_attn_varlen() is None:
            reason = "flash_attn is not installed"
        elif x.device.type != "cuda":
            reason = f"tensors are on {x.device.type}, not CUDA"
        elif weight_dtype not in (torch.float16, torch.bfloat16):
            reason = "weights are not fp16/bf16"
        if reason is None:
            return impl
        if not self._warned_fallback:
            logger.info("vision encoder: flash_attention_2 unavailable (%s); using sdpa", reason)
            self._warned_fallback = True
        return "sdpa"

    def forward(
        self, pixel_values: torch.Tensor, grid_thw: torch.Tensor, merge_sizes: Sequence[int] | None = None
    ) -> torch.Tensor:
        expected = self.config.num_channels * self.config.patch_size**2
        if pixel_values.dim() != 2 or pixel_values.shape[1] != expected:
            raise ValueError(
                f"pixel_values must be [total_patches, {expected}], got {tuple(pixel_values.shape)}"
            )
        grid_thw = torch.as_tensor(grid_thw, dtype=torch.long)
        total = int((grid_thw[:, 0] * grid_thw[:, 1] * grid_thw[:, 2]).sum()) if grid_thw.numel() else 0
        if total != pixel_values.shape[0]:
            raise ValueError(
                f"grid_thw covers {total} patches but pixel_values has {pixel_values.shape[0]} rows"
            )
        fast = current_fast_path()
        if fast is None:
            impl = self._resolve_implementation(pixel_values, self.attn_implementation)
            out: torch.Tensor = self.vision_encoder(pixel_values, grid_thw, impl, merge_sizes)
            return out
        weight_dtype = self.vision_encoder.embeddings.patch_embedding.weight.dtype
        impl = resolve_attention(fast.attention, pixel_values.device, weight_dtype, self.attn_implementation)
        impl = self._resolve_implementation(pixel_values, impl)
        compiled = fast.compile and pixel_values.device.type == "cuda" and "compile" not in fast_path_failures()
        try:
            out = self.vision_encoder(pixel_values, grid_thw, impl, merge_sizes, fused=fast.fused, compiled=compiled)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as err:  # noqa: BLE001 - a kernel or compiler failure: skip that part from now on
            if not (compiled or impl in ("varlen", "flex")) or fast.strict:
                raise
            record_failure("compile" if compiled else impl, err)
            return self.forward(pixel_values, grid_thw, merge_sizes)
        return out
