"""Processing shared by both variants: input checks, image/video and object-crop preprocessing, prompt ids.

`PixelReferProcessor` (full) and `PixelReferLiteProcessor` turn one request into `PixelReferInputs`, a
typed mapping that `model.generate(**inputs)` / `model(**inputs)` take:

    inputs = processor(frames, question, masks=masks, mask_frame_ids=[0], timestamps=ts)
    new_ids = model.generate(**inputs, max_new_tokens=64)

Full model requests (full reference §2.1): `frames` are what the LLM sees (one frame and
`timestamps=None` for an image; a video's frames with one timestamp each), `mask_frames` the annotated
frames the masks lie on (None: the masks lie on `frames`), `masks[i]` on `mask_frames[mask_frame_ids[i]]`,
one `<region>` per mask in the question (masks may be None for a region-free question).
Lite requests: `frames` are the annotated frames (Lite reference §4).

`check_full_request` / `check_lite_request` do every check that needs no pixels (counts, indices,
shapes, empty masks, placeholder counts, timestamp counts), so a caller can refuse bad input before any
model work; errors are InputError / PromptError naming the mask, frame or count.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from pixelrefer_core.errors import PromptError

from .configuration_pixelrefer import PixelReferConfig, PixelReferLiteConfig
from .crops import ObjectCrop, binarize_masks, crop_objects
from .errors import InputError
from .image_processing_pixelrefer import ProcessedImage, per_call_max_pixels, process_image
from .object_tokens import ObjectTokenRequest
from .prompting import (
    REGION_PLACEHOLDER,
    build_full_prompt,
    build_prompt,
    group_masks_by_object,
    split_at_modal_tag,
)

__all__ = [
    "PixelReferInputs",
    "PixelReferLiteProcessor",
    "PixelReferProcessor",
    "RegionInputs",
    "VisualInputs",
    "check_full_request",
    "check_lite_request",
    "prepare_region_inputs",
    "prepare_visual_inputs",
    "processor_for",
]

MasksLike = np.ndarray | torch.Tensor | Sequence[np.ndarray]


@dataclass(frozen=True)
class VisualInputs:
    """The full model's image or video, preprocessed: one `ProcessedImage` per frame (all of one size).

    timestamps: seconds per frame for a video (rendered `Time {t}s:`), None for an image. Images use
    merge size 1 (stride 1), videos 2 (merge-grouped rows, 2x2 downsampling, compression) (§8.1).
    """

    frames: tuple[ProcessedImage, ...]
    timestamps: tuple[float, ...] | None

    @property
    def is_video(self) -> bool:
        return self.timestamps is not None

    @property
    def merge_size(self) -> int:
        return self.frames[0].merge_size

    @property
    def tokens_per_frame(self) -> int:
        """`<image>` tokens per frame before compression: gh * gw / merge^2."""
        return self.frames[0].num_patches // self.merge_size**2

    @property
    def num_frames(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class RegionInputs:
    """The full model's object crops, preprocessed: per mask its crop / grid mask / box and processed crop."""

    crops: tuple[ObjectCrop, ...]
    images: tuple[ProcessedImage, ...]

    @property
    def tokens_per_mask(self) -> tuple[int, ...]:
        return tuple(c.num_tokens for c in self.crops)


@dataclass(frozen=True)
class PixelReferInputs(Mapping[str, Any]):
    """One prompt for `model.generate(**inputs)` / `model(**inputs)` (None fields are left out).

    input_ids / attention_mask: [1, L] before compression; visual_inputs: full model only; region_inputs:
    `RegionInputs` (full) or an `ObjectTokenRequest` (Lite); generator: the full model's k-means RNG
    (Lite requests carry theirs). With no generator, every use draws from a fresh one seeded 0, so the same
    inputs give the same outputs each time; a given generator advances as k-means draws from it.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    visual_inputs: VisualInputs | None = None
    region_inputs: RegionInputs | ObjectTokenRequest | None = None
    generator: torch.Generator | None = None

    def _present(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def __getitem__(self, key: str) -> Any:
        if key not in self._present():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._present())

    def __len__(self) -> int:
        return len(self._present())


def _check_frames(frames: Sequence[np.ndarray], what: str, same_size: bool) -> None:
    if len(frames) == 0:
        raise InputError(f"no {what} given")
    for j, frame in enumerate(frames):
        arr = np.asarray(frame)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise InputError(f"{what} {j} must be HxWx3 uint8 RGB, got shape {arr.shape} dtype {arr.dtype}")
        if same_size and arr.shape != np.asarray(frames[0]).shape:
            raise InputError(
                f"{what} {j} is {arr.shape[:2]} but {what} 0 is {np.asarray(frames[0]).shape[:2]}"
            )


def _check_masks(
    masks: MasksLike, mask_frame_ids: Sequence[int], mask_frames: Sequence[np.ndarray], allow_empty: bool
) -> np.ndarray:
    binary = binarize_masks(masks)
    if len(binary) != len(mask_frame_ids):
        raise InputError(
            f"{len(binary)} masks but {len(mask_frame_ids)} mask_frame_ids; give one frame id per mask"
        )
    for i, fid in enumerate(mask_frame_ids):
        if not 0 <= int(fid) < len(mask_frames):
            raise InputError(
                f"mask {i}: frame id {int(fid)} does not exist ({len(mask_frames)} annotated frames)"
            )
        shape = np.asarray(mask_frames[int(fid)]).shape[:2]
        if binary[i].shape != shape:
            raise InputError(f"mask {i} has shape {binary[i].shape} but its frame {int(fid)} is {shape}")
        if not allow_empty and not binary[i].any():
            raise InputError(
                f"mask {i} (frame {int(fid)}) is empty; the full PixelRefer needs at least one pixel"
            )
    return binary


def check_full_request(
    frames: Sequence[np.ndarray],
    masks: MasksLike | None,
    mask_frame_ids: Sequence[int] | None,
    question: str,
    timestamps: Sequence[float] | None = None,
    mask_frames: Sequence[np.ndarray] | None = None,
) -> None:
    """Every pixel-free check of a full-model request (see the module docstring); raises or returns None."""
    _check_frames(frames, "frame", same_size=True)
    if timestamps is None and len(frames) != 1:
        raise InputError(f"an image takes one frame, got {len(frames)}; give timestamps for a video")
    if timestamps is not None and len(timestamps) != len(frames):
        raise InputError(f"{len(timestamps)} timestamps for {len(frames)} frames; give one per frame")
    annotated = frames if mask_frames is None else mask_frames
    if mask_frames is not None:
        _check_frames(mask_frames, "mask frame", same_size=False)
    n_masks = 0
    if masks is not None:
        _check_masks(masks, list(mask_frame_ids or []), annotated, allow_empty=False)
        n_masks = len(mask_frame_ids or [])
    elif mask_frame_ids:
        raise InputError(f"{len(mask_frame_ids)} mask_frame_ids but no masks")
    n_regions = question.count(REGION_PLACEHOLDER)
    if n_regions != n_masks:
        raise PromptError(
            f"question has {n_regions} {REGION_PLACEHOLDER} placeholder(s) but {n_masks} mask(s) were given "
            f"(the full PixelRefer takes one {REGION_PLACEHOLDER} per mask): {question!r}"
        )
    split_at_modal_tag(question, video=timestamps is not None)


def check_lite_request(
    frames: Sequence[np.ndarray],
    masks: MasksLike,
    mask_frame_ids: Sequence[int],
    question: str,
    object_frame_ids: Sequence[Sequence[int]] | None = None,
    timestamps: Sequence[float] | None = None,
) -> None:
    """Every pixel-free check of a Lite request. Empty masks are allowed (the official Lite code gives
    them a zeros crop and 32 tokens)."""
    _check_frames(frames, "frame", same_size=False)
    _check_masks(masks, mask_frame_ids, frames, allow_empty=True)
    if timestamps is not None and len(timestamps) != len(frames):
        raise InputError(f"{len(timestamps)} timestamps for {len(frames)} frames; give one per frame")
    groups = group_masks_by_object(mask_frame_ids, object_frame_ids, timestamps is not None)
    n_regions = question.count(REGION_PLACEHOLDER)
    if n_regions != len(groups):
        raise PromptError(
            f"question has {n_regions} {REGION_PLACEHOLDER} placeholder(s) but {len(groups)} object(s) were "
            f"given: {question!r}"
        )


def prepare_visual_inputs(
    frames: Sequence[np.ndarray], timestamps: Sequence[float] | None, config: PixelReferConfig
) -> VisualInputs:
    """Preprocess an image (timestamps None, one frame, stride 1) or a video (stride 2, budget / T)."""
    if timestamps is None and len(frames) != 1:
        raise InputError(f"an image takes one frame, got {len(frames)}; give timestamps for a video")
    d = 1 if timestamps is None else config.spatial_merge_size
    max_px = per_call_max_pixels(len(frames), config.total_max_pixels, config.spatial_merge_size, d)
    processed = tuple(process_image(np.asarray(f), max_pixels=max_px, merge_size=d) for f in frames)
    return VisualInputs(frames=processed, timestamps=None if timestamps is None else tuple(timestamps))


def prepare_region_inputs(
    mask_frames: Sequence[np.ndarray],
    masks: MasksLike,
    mask_frame_ids: Sequence[int],
    config: PixelReferConfig,
) -> RegionInputs:
    """Crop, scale and grid-mask every mask, then preprocess the crops with the per-request budget (§8.6)."""
    crops = tuple(crop_objects(mask_frames, masks, mask_frame_ids, config.mask_num))
    n = len(crops) if config.crop_budget == "per_request" else 1
    max_px = per_call_max_pixels(max(n, 1), config.total_max_pixels, config.spatial_merge_size)
    return RegionInputs(crops=crops, images=tuple(process_image(c.crop, max_pixels=max_px) for c in crops))


def _encode(tokenizer: PreTrainedTokenizerBase, text: str) -> torch.Tensor:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


class PixelReferProcessor:
    """Full-model processor: `processor(frames, question, ...)` -> PixelReferInputs (see the module docstring)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: PixelReferConfig):
        self.tokenizer = tokenizer
        self.config = config

    def prompt_ids(self, question: str, visual: VisualInputs, region: RegionInputs | None) -> torch.Tensor:
        """Token ids [L] of the chat prompt before compression."""
        counts = region.tokens_per_mask if region is not None else ()
        text = build_full_prompt(
            question, counts, visual.tokens_per_frame, visual.timestamps, self.config.timestamp_rounding
        )
        return _encode(self.tokenizer, text)

    def __call__(
        self,
        frames: Sequence[np.ndarray],
        question: str,
        masks: MasksLike | None = None,
        mask_frame_ids: Sequence[int] | None = None,
        timestamps: Sequence[float] | None = None,
        mask_frames: Sequence[np.ndarray] | None = None,
        generator: torch.Generator | None = None,
    ) -> PixelReferInputs:
        check_full_request(frames, masks, mask_frame_ids, question, timestamps, mask_frames)
        visual = prepare_visual_inputs(frames, timestamps, self.config)
        region = None
        if masks is not None:
            annotated = frames if mask_frames is None else mask_frames
            region = prepare_region_inputs(annotated, masks, list(mask_frame_ids or []), self.config)
        ids = self.prompt_ids(question, visual, region)[None]
        return PixelReferInputs(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            visual_inputs=visual,
            region_inputs=region,
            generator=generator,
        )


class PixelReferLiteProcessor:
    """Lite processor: `processor(frames, masks, mask_frame_ids, question, ...)` -> PixelReferInputs."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: PixelReferLiteConfig):
        self.tokenizer = tokenizer
        self.config = config

    def prompt_ids(
        self,
        question: str,
        mask_frame_ids: Sequence[int],
        object_frame_ids: Sequence[Sequence[int]] | None = None,
        timestamps: Sequence[float] | None = None,
    ) -> torch.Tensor:
        """Token ids [L] of the chat prompt (raises PromptError on placeholder/object mismatches)."""
        text = build_prompt(question, mask_frame_ids, self.config.mask_num, object_frame_ids, timestamps)
        return _encode(self.tokenizer, text)

    def __call__(
        self,
        frames: Sequence[np.ndarray],
        masks: MasksLike,
        mask_frame_ids: Sequence[int],
        question: str,
        object_frame_ids: Sequence[Sequence[int]] | None = None,
        timestamps: Sequence[float] | None = None,
        generator: torch.Generator | None = None,
    ) -> PixelReferInputs:
        check_lite_request(frames, masks, mask_frame_ids, question, object_frame_ids, timestamps)
        ids = self.prompt_ids(question, mask_frame_ids, object_frame_ids, timestamps)[None]
        request = ObjectTokenRequest(
            frames=list(frames),
            masks=masks,
            mask_frame_ids=list(mask_frame_ids),
            generator=generator,  # None: a fresh generator seeded 0 at every use (reusable inputs)
        )
        return PixelReferInputs(input_ids=ids, attention_mask=torch.ones_like(ids), region_inputs=request)


def processor_for(
    model: Any, tokenizer: PreTrainedTokenizerBase
) -> PixelReferProcessor | PixelReferLiteProcessor:
    """The processor of a loaded model's variant (`PixelReferProcessor` or `PixelReferLiteProcessor`)."""
    config = getattr(model, "config", None)
    if isinstance(config, PixelReferConfig):
        return PixelReferProcessor(tokenizer, config)
    if isinstance(config, PixelReferLiteConfig):
        return PixelReferLiteProcessor(tokenizer, config)
    raise TypeError(f"{type(model).__name__} is not a PixelRefer or PixelRefer-Lite model")
