"""Block-diagonal attention over a packed vision batch, and the switches of the vision encoder's fast path.

A packed batch holds many images one after the other (`cu_seqlens`: cumulative patch counts); a patch
attends only to patches of its own image. What each attention implementation needs about the packing is
computed once per encoder pass (`pack_sequences`), not once per layer:

- "sdpa": images of equal length gathered into one [B, heads, L, d] batch per length, no mask
  (memory O(sum L^2)); the gather indices are built once and reused by every layer.
- "varlen": PyTorch's own variable-length flash attention (`torch.nn.attention.varlen.varlen_attn`,
  torch >= 2.9, CUDA and fp16/bf16 only): no padding, no mask, one kernel for the whole batch.
- "flex": FlexAttention with a document block mask built directly from `cu_seqlens` (only the tiles
  that touch an image's own patches are visited; no O(total^2) mask is ever materialised). Fast only
  when compiled (on CUDA); on CPU it runs the reference implementation (tests).
- "eager", "flash_attention_2": see `modeling_vision.block_attention`.

`vision_fast_path(VisionFastPath(...))` is a context manager (a context variable, so it is per thread)
that the describe engine sets around its vision work: it chooses the attention implementation ("auto":
varlen on CUDA in half precision when available, else flex, else sdpa), the fused layer math (one qkv
matrix product, functional layers) and `torch.compile` of that math. Outside it the encoder does what
its `attn_implementation` says, so `model.generate` and every existing caller are unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "FAST_ATTENTION_CHOICES",
    "PackedSequences",
    "VisionFastPath",
    "current_fast_path",
    "document_block_mask",
    "fast_path_failures",
    "flex_available",
    "pack_sequences",
    "record_failure",
    "resolve_attention",
    "varlen_available",
    "vision_fast_path",
]

logger = logging.getLogger(__name__)

FLEX_BLOCK = 128
FAST_ATTENTION_CHOICES = ("auto", "varlen", "flex", "sdpa", "eager", "flash_attention_2")


def _varlen_fn() -> Callable[..., Any] | None:
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    fn: Callable[..., Any] = varlen_attn
    return fn


def varlen_available() -> bool:
    """torch ships `varlen_attn` (2.9+) and a CUDA device is present."""
    return _varlen_fn() is not None and torch.cuda.is_available()


def flex_available() -> bool:
    try:
        from torch.nn.attention.flex_attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class VisionFastPath:
    """attention: one of FAST_ATTENTION_CHOICES ("auto" picks per device and dtype); fused: functional
    layers with one qkv product (same math); compile: `torch.compile` the fused layer math (CUDA only:
    ignored elsewhere, where compiling costs more than it saves); strict: raise when varlen, flex or
    compiling fails, instead of recording it (`fast_path_failures`) and running the next choice."""

    attention: str = "auto"
    fused: bool = True
    compile: bool = False
    strict: bool = False

    def __post_init__(self) -> None:
        if self.attention not in FAST_ATTENTION_CHOICES:
            raise ValueError(f"vision attention {self.attention!r} is unknown; use one of {FAST_ATTENTION_CHOICES}")


# What of the fast path failed in this process ("varlen", "flex", "compile" -> the error), so that it is
# not tried again: the encoder then runs the next choice (sdpa, uncompiled) and says so once in the log.
_FAILED: dict[str, str] = {}


def fast_path_failures() -> dict[str, str]:
    """Parts of the vision fast path that failed in this process and are skipped since (benchmarks report it)."""
    return dict(_FAILED)


def record_failure(part: str, err: BaseException) -> None:
    if part not in _FAILED:
        _FAILED[part] = f"{type(err).__name__}: {err}"
        logger.warning("vision fast path: %s failed (%s); using the next choice from now on", part, _FAILED[part])


_FAST_PATH: ContextVar[VisionFastPath | None] = ContextVar("pixelrefer_vision_fast_path", default=None)


def current_fast_path() -> VisionFastPath | None:
    """The options set by the innermost `vision_fast_path` of this thread (None outside one)."""
    return _FAST_PATH.get()


@contextlib.contextmanager
def vision_fast_path(options: VisionFastPath | None) -> Iterator[None]:
    """Run the vision encoder with `options` inside the block (None: as configured)."""
    token = _FAST_PATH.set(options)
    try:
        yield
    finally:
        _FAST_PATH.reset(token)


def resolve_attention(choice: str, device: torch.device, dtype: torch.dtype, configured: str) -> str:
    """The implementation a pass uses: "auto" -> varlen (CUDA, fp16/bf16, torch >= 2.9), else flex (CUDA),
    else `configured`; an explicit varlen where it cannot run falls back to sdpa."""
    half = dtype in (torch.float16, torch.bfloat16)
    if choice in _FAILED:
        return configured if configured not in _FAILED else "sdpa"
    if choice == "auto":
        if device.type == "cuda" and half and _varlen_fn() is not None and "varlen" not in _FAILED:
            return "varlen"
        if device.type == "cuda" and flex_available() and "flex" not in _FAILED:
            return "flex"
        return configured if configured not in _FAILED else "sdpa"
    if choice == "varlen" and not (device.type == "cuda" and half and _varlen_fn() is not None):
        logger.info("vision encoder: varlen attention needs CUDA, fp16/bf16 and torch >= 2.9; using sdpa")
        return "sdpa"
    return choice


@dataclass(frozen=True)
class PackedSequences:
    """The packing of one encoder pass, as its attention implementation needs it.

    cu_seqlens: Int32 [n + 1] on the CPU; max_len: longest image; device_cu: cu_seqlens on the tensors'
    device (varlen); groups: (length, row indices [B * length]) per distinct length (sdpa);
    block_mask: the FlexAttention BlockMask (flex)."""

    implementation: str
    cu_seqlens: torch.Tensor
    max_len: int
    device_cu: torch.Tensor | None = None
    groups: tuple[tuple[int, torch.Tensor], ...] = ()
    block_mask: Any = None


def _segments(cu: list[int]) -> list[tuple[int, int]]:
    return [(cu[i], cu[i + 1]) for i in range(len(cu) - 1) if cu[i + 1] > cu[i]]


def pack_sequences(cu_seqlens: torch.Tensor, implementation: str, device: torch.device) -> PackedSequences:
    """Everything `implementation` needs about the packing `cu_seqlens`, built once per pass."""
    cu_cpu = cu_seqlens.detach().to("cpu", torch.int32)
    cu = cu_cpu.tolist()
    lengths = [e - s for s, e in _segments(cu)]
    max_len = max(lengths, default=0)
    if implementation == "varlen":
        return PackedSequences(implementation, cu_cpu, max_len, device_cu=cu_cpu.to(device))
    if implementation == "flex":
        return PackedSequences(implementation, cu_cpu, max_len, block_mask=document_block_mask(cu_cpu, device))
    if implementation == "sdpa":
        by_len: dict[int, list[int]] = {}
        for s, e in _segments(cu):
            by_len.setdefault(e - s, []).append(s)
        groups = []
        for length, starts in by_len.items():
            idx = (torch.tensor(starts)[:, None] + torch.arange(length)).reshape(-1)
            groups.append((length, idx.to(device)))
        return PackedSequences(implementation, cu_cpu, max_len, groups=tuple(groups))
    return PackedSequences(implementation, cu_cpu, max_len)


def document_block_mask(cu_seqlens: torch.Tensor, device: torch.device | str, block: int = FLEX_BLOCK) -> Any:
    """A FlexAttention `BlockMask` of the block-diagonal (one document per image) mask of `cu_seqlens`.

    Built from the boundaries alone: q-block i visits the kv-blocks spanning the images its patches
    belong to; a tile is "full" (no mask_mod call) when both blocks lie inside one image, "partial"
    otherwise. Work is O(blocks * blocks per image) and memory O(blocks^2) int32 (1 MB at 66k patches),
    never O(total^2).
    """
    from torch.nn.attention.flex_attention import BlockMask

    cu = np.asarray(cu_seqlens.detach().cpu().tolist(), dtype=np.int64)
    total = int(cu[-1]) if cu.size else 0
    nblocks = max(1, -(-total // block))
    lengths = np.diff(cu)
    doc_np = np.repeat(np.arange(lengths.size), lengths)  # image id of every patch
    starts, ends = cu[:-1], cu[1:]
    first = np.arange(nblocks) * block  # first patch of each block
    last = np.minimum(first + block, total) - 1  # last patch of each block
    d_first, d_last = doc_np[np.minimum(first, total - 1)], doc_np[np.maximum(last, 0)]
    # the block lies inside one image (a last block cut short by `total` is partial, as torch makes it)
    whole = (d_first == d_last) & (first + block <= total)
    kv_lo = starts[d_first] // block
    kv_hi = (ends[d_last] - 1) // block
    # one column per kv block, as torch lays the indices out (its transposes assume that width)
    partial_idx = np.zeros((nblocks, nblocks), dtype=np.int32)
    full_idx = np.zeros((nblocks, nblocks), dtype=np.int32)
    partial_n = np.zeros(nblocks, dtype=np.int32)
    full_n = np.zeros(nblocks, dtype=np.int32)
    for i in range(nblocks):
        for j in range(int(kv_lo[i]), int(kv_hi[i]) + 1):
            if whole[i] and whole[j] and d_first[i] == d_first[j]:
                full_idx[i, full_n[i]] = j
                full_n[i] += 1
            else:
                partial_idx[i, partial_n[i]] = j
                partial_n[i] += 1
    # padded to whole blocks with -1, so that the kernel's tail lookups stay in bounds
    doc = torch.from_numpy(np.concatenate([doc_np, np.full(nblocks * block - total, -1)])).to(device)

    def same_image(b: Any, h: Any, q: Any, kv: Any) -> Any:
        return doc[q] == doc[kv]

    def as_tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a)[None, None].to(device)

    return BlockMask.from_kv_blocks(
        as_tensor(partial_n),
        as_tensor(partial_idx),
        as_tensor(full_n),
        as_tensor(full_idx),
        BLOCK_SIZE=block,
        mask_mod=same_image,
        seq_lengths=(total, total),
    )


_COMPILED_FLEX: Callable[..., torch.Tensor] | None = None


def flex_block_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedSequences) -> torch.Tensor:
    """q, k, v [N, heads, d] -> [N, heads, d] with the packing's block mask (compiled kernel on CUDA)."""
    global _COMPILED_FLEX
    from torch.nn.attention.flex_attention import flex_attention

    fn: Callable[..., torch.Tensor] = flex_attention
    if q.device.type == "cuda":
        if _COMPILED_FLEX is None:
            _COMPILED_FLEX = torch.compile(flex_attention, dynamic=True)
        fn = _COMPILED_FLEX
    qs, ks, vs = (t.transpose(0, 1)[None] for t in (q, k, v))  # [1, heads, N, d]
    with warnings.catch_warnings():
        # uncompiled (CPU) flex runs torch's reference implementation, on purpose: no warning per call
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        out = fn(qs, ks, vs, block_mask=packed.block_mask, scale=q.shape[-1] ** -0.5)
    return out[0].transpose(0, 1)


def varlen_block_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedSequences
) -> torch.Tensor:
    """q, k, v [N, heads, d] (CUDA, fp16/bf16) -> [N, heads, d] through PyTorch's varlen flash attention."""
    fn = _varlen_fn()
    if fn is None:
        raise RuntimeError("varlen attention needs torch >= 2.9 (torch.nn.attention.varlen)")
    cu = packed.device_cu if packed.device_cu is not None else packed.cu_seqlens.to(q.device)
    out: torch.Tensor = fn(q.contiguous(), k.contiguous(), v.contiguous(), cu, cu, packed.max_len, packed.max_len)
    return out
