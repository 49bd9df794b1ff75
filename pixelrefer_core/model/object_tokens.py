"""PixelRefer-Lite object tokens for many requests at once: frames + masks -> [N * mask_num, D] per request.

Also the packed vision-encoder pass both variants use (`encode_packed`) and its statistics (`EncoderStats`).

`compute_object_tokens` runs SAOT on every mask of every request, preprocesses crops, local and
global images with the per-call pixel budget of *their own* request (the official budget divides by the
request's mask count, §8.6), packs every image into one variable-length vision-encoder batch (split
only above `max_encoder_patches`), and region-encodes all masks together.

Equivalences (tested): the result for a request does not depend on what else is in the batch, and it
equals the official order (crops, globals, locals encoded as three separate calls, one global per mask).
A frame's global image is encoded once per (frame key, processed size): give `frame_keys` (e.g.
`(video_id, frame_idx)`) to share it across requests; without them frames are never shared across
requests. k-means randomness: each request uses its own generator (or a fresh one seeded 0), drawn in
mask order, so results are reproducible and independent of batching.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .configuration_vision import PixelReferVisionConfig
from .crops_lite import SAOTObject, process_objects
from .image_processing_pixelrefer import (
    DEFAULT_MERGE_SIZE,
    DEFAULT_MIN_PIXELS,
    DEFAULT_TOTAL_MAX_PIXELS,
    ProcessedImage,
    per_call_max_pixels,
    process_image,
    smart_resize,
)
from .modeling_vision import PixelReferVisionEncoder
from .region_encoder import PixelReferLiteRegionEncoder

__all__ = ["EncoderStats", "ObjectTokenRequest", "compute_object_tokens", "encode_packed", "encoder_flops"]

logger = logging.getLogger(__name__)

# Images of one packed vision-encoder pass are keyed by what identifies them: ("crop", request, mask),
# ("local", request, mask or frame), ("global", frame key, processed size).
ImageKey = tuple[Hashable, ...]


@dataclass
class ObjectTokenRequest:
    """One model call's worth of objects.

    frames: HxWx3 uint8 RGB frames; masks: [N, H, W] (nonzero = object), masks[i] on
    frames[mask_frame_ids[i]]; frame_keys: optional hashable identity per frame (same length as frames)
    so identical frames of different requests share their global image. A key promises identical
    pixels: two different frames under one key silently share one global image. generator: k-means init RNG.
    """

    frames: Sequence[np.ndarray]
    masks: np.ndarray | torch.Tensor | Sequence[np.ndarray]
    mask_frame_ids: Sequence[int]
    frame_keys: Sequence[Hashable] | None = None
    generator: torch.Generator | None = None


@dataclass
class EncoderStats:
    """What one `compute_object_tokens` call did (pass an instance as `stats=` to fill it).

    masks: masks tokenised; encoder_calls: vision-encoder passes; images_encoded / patches_encoded: images
    and 14x14 patches in those passes; globals_shared: global images reused instead of encoded again;
    flops_per_call: estimated FLOPs of each pass (`encoder_flops`).
    timed (set it before the call; benchmarks): synchronise the device around each phase and add its wall
    time to prepare_seconds (SAOT crops, resizing, patch rows: CPU), encode_seconds (the vision-encoder
    passes) and region_seconds (pooling, k-means, OCI, token MLP). Off by default: no extra syncs.
    """

    masks: int = 0
    encoder_calls: int = 0
    images_encoded: int = 0
    patches_encoded: int = 0
    globals_shared: int = 0
    flops_per_call: list[int] = field(default_factory=list)
    timed: bool = False
    prepare_seconds: float = 0.0
    encode_seconds: float = 0.0
    region_seconds: float = 0.0

    @property
    def flops(self) -> int:
        return int(sum(self.flops_per_call))


@dataclass(frozen=True)
class _MaskEntry:
    """One mask of one request: its SAOT result and the keys of its three images in the packed pass."""

    obj: SAOTObject
    crop: ImageKey
    local: ImageKey
    glob: ImageKey


def encoder_flops(config: PixelReferVisionConfig, seqlens: Sequence[int]) -> int:
    """Approximate multiply-add FLOPs (x2) of one vision-encoder call over images with `seqlens` patches."""
    c, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    n = int(sum(seqlens))
    sq = int(sum(s * s for s in seqlens))
    patch = 2 * n * config.num_channels * config.patch_size**2 * c
    per_layer = 2 * n * (4 * c * c + 2 * c * inter) + 2 * 2 * sq * c
    return patch + layers * per_layer


def _chunks(keys: list[ImageKey], sizes: dict[ImageKey, int], limit: int | None) -> list[list[ImageKey]]:
    if not limit:
        return [keys] if keys else []
    out: list[list[ImageKey]] = []
    cur: list[ImageKey] = []
    n = 0
    for k in keys:
        if cur and n + sizes[k] > limit:
            out.append(cur)
            cur, n = [], 0
        cur.append(k)
        n += sizes[k]
    if cur:
        out.append(cur)
    return out


def encode_packed(
    vision_encoder: PixelReferVisionEncoder,
    images: dict[ImageKey, ProcessedImage],
    *,
    max_patches: int | None,
    device: torch.device,
    dtype: torch.dtype,
    round_bf16: bool,
    stats: EncoderStats | None,
) -> dict[ImageKey, torch.Tensor]:
    """Vision features [num_patches, C] of every image, in as few block-diagonal passes as `max_patches` allows.

    Each image's rows keep its own order (`ProcessedImage.merge_size`: raster or merge-grouped)."""
    keys = list(images)
    sizes = {k: images[k].num_patches for k in keys}
    feats: dict[ImageKey, torch.Tensor] = {}
    start = _clock(stats, device)
    for chunk in _chunks(keys, sizes, max_patches):
        pix = torch.from_numpy(np.concatenate([images[k].pixel_values for k in chunk])).to(device)
        if round_bf16:
            pix = pix.to(torch.bfloat16)
        pix = pix.to(dtype)
        grid = torch.tensor([images[k].grid_thw for k in chunk], dtype=torch.long)
        out = vision_encoder(pix, grid, [images[k].merge_size for k in chunk])
        for k, part in zip(chunk, out.split([sizes[k] for k in chunk]), strict=True):
            feats[k] = part
        if stats is not None:
            seqlens = [sizes[k] for k in chunk]
            stats.encoder_calls += 1
            stats.images_encoded += len(chunk)
            stats.patches_encoded += sum(seqlens)
            stats.flops_per_call.append(encoder_flops(vision_encoder.config, seqlens))
    if stats is not None and stats.timed:
        stats.encode_seconds += _clock(stats, device) - start
    return feats


def _clock(stats: EncoderStats | None, device: torch.device | str) -> float:
    """perf_counter, after synchronising `device` when `stats.timed` (so phases are timed, not launched)."""
    if stats is not None and stats.timed and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


@torch.no_grad()
def compute_object_tokens(
    vision_encoder: PixelReferVisionEncoder,
    region_encoder: PixelReferLiteRegionEncoder,
    requests: Sequence[ObjectTokenRequest],
    *,
    mask_num: int = 32,
    reuse_first_local_crop: bool = False,
    round_pixels_to_bf16: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    max_encoder_patches: int | None = None,
    total_max_pixels: int = DEFAULT_TOTAL_MAX_PIXELS,
    merge_size: int = DEFAULT_MERGE_SIZE,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    stats: EncoderStats | None = None,
) -> list[torch.Tensor]:
    """Object tokens per request: a list of [N_i * mask_num, D] tensors, in request order (mask-major).

    vision_encoder: `PixelReferVisionEncoder`; region_encoder: `PixelReferLiteRegionEncoder` (its `mask_num` must equal
    `mask_num`). `reuse_first_local_crop` reproduces the official per-frame local-crop cache bug.
    `round_pixels_to_bf16` rounds pixel values through bfloat16 as the official `.bfloat16()` cast does
    (implied anyway when `dtype` is bfloat16). dtype/device default to the vision encoder's parameters.
    `max_encoder_patches` caps the patches per vision-encoder call (None = one call). `stats`, when given,
    is filled in (see `EncoderStats`). Runs under `torch.no_grad()`.
    """
    if region_encoder.mask_num != mask_num:
        raise ValueError(f"region_encoder.mask_num={region_encoder.mask_num} but mask_num={mask_num}")
    param = next(vision_encoder.parameters())
    dtype = dtype or param.dtype
    device = torch.device(device) if device is not None else param.device

    start = _clock(stats, device)
    images: dict[ImageKey, ProcessedImage] = {}
    per_request: list[list[_MaskEntry]] = []
    for r, req in enumerate(requests):
        if req.frame_keys is not None and len(req.frame_keys) != len(req.frames):
            raise ValueError(f"request {r}: {len(req.frame_keys)} frame_keys for {len(req.frames)} frames")
        saot = process_objects(
            req.frames,
            req.masks,
            req.mask_frame_ids,
            mask_token_num=mask_num,
            reuse_first_local_crop=reuse_first_local_crop,
        )
        entries: list[_MaskEntry] = []
        per_request.append(entries)
        max_px = per_call_max_pixels(len(saot.objects), total_max_pixels, merge_size) if saot.objects else 0

        def prep(key: ImageKey, img: np.ndarray, max_px: int = max_px) -> ImageKey:
            if key not in images:
                images[key] = process_image(img, max_pixels=max_px, min_pixels=min_pixels)
            elif stats is not None and key[0] == "global":
                stats.globals_shared += 1
            return key

        for i, obj in enumerate(saot.objects):
            fid = obj.frame_id
            fkey = req.frame_keys[fid] if req.frame_keys is not None else ("request", r, fid)
            g = saot.global_images[fid]
            gsize = smart_resize(g.shape[0], g.shape[1], min_pixels=min_pixels, max_pixels=max_px)
            local_key: ImageKey = ("local", r, fid) if reuse_first_local_crop else ("local", r, i)
            entries.append(
                _MaskEntry(
                    obj=obj,
                    crop=prep(("crop", r, i), obj.crop),
                    local=prep(local_key, obj.local_image),
                    glob=prep(("global", fkey, gsize), g),
                )
            )
        if stats is not None:
            stats.masks += len(saot.objects)

    if stats is not None and stats.timed:
        stats.prepare_seconds += _clock(stats, device) - start
    feats = encode_packed(
        vision_encoder,
        images,
        max_patches=max_encoder_patches,
        device=device,
        dtype=dtype,
        round_bf16=round_pixels_to_bf16,
        stats=stats,
    )

    crop_feats: list[torch.Tensor] = []
    grids: list[torch.Tensor] = []
    boxes: list[tuple[int, int, int, int]] = []
    sizes: list[tuple[int, int]] = []
    locals_: list[torch.Tensor] = []
    globals_: list[torch.Tensor] = []
    gens: list[torch.Generator | None] = []
    for req, entries in zip(requests, per_request, strict=True):
        # One generator per request, drawn in mask order (a fresh one seeded 0 when the request has none).
        gen = req.generator if req.generator is not None else torch.Generator().manual_seed(0)
        for e in entries:
            _, gh, gw = images[e.crop].grid_thw
            crop_feats.append(feats[e.crop].view(gh, gw, -1))
            grids.append(torch.from_numpy(e.obj.grid_mask))
            boxes.append(e.obj.box)
            sizes.append(e.obj.image_size)
            locals_.append(feats[e.local])
            globals_.append(feats[e.glob])
            gens.append(gen)
    start = _clock(stats, device)
    tokens = region_encoder(crop_feats, grids, boxes, sizes, locals_, globals_, generators=gens)
    if stats is not None and stats.timed:
        stats.region_seconds += _clock(stats, device) - start
    counts = [len(entries) * mask_num for entries in per_request]
    return list(tokens.split(counts))
