"""Typed outputs of both variants (transformers `ModelOutput`s: attribute and key access, None fields skipped)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.utils import ModelOutput

__all__ = [
    "MultimodalEmbeddings",
    "PixelReferCausalLMOutputWithPast",
    "RegionFeatures",
    "VisualFeatures",
]


@dataclass
class RegionFeatures(ModelOutput):
    """Object tokens of one request.

    tokens: [sum_i n_i, D] in mask order, in the model dtype (Lite: n_i = mask_num for every mask; full:
    0..mask_num). tokens_per_mask: the n_i, the number of `<REGION>` tokens each mask's region string holds.
    """

    tokens: torch.Tensor | None = None
    tokens_per_mask: tuple[int, ...] | None = None


@dataclass
class VisualFeatures(ModelOutput):
    """The full model's vision tokens of one image or video.

    tokens: [n_kept, D] projected vision tokens that enter the LLM, frames in order.
    keep: bool [num_frames * tokens_per_frame], which `<image>` positions of the prompt survive video
    token compression (all True for an image or a one-frame video).
    tokens_per_frame: `<image>` tokens per frame before compression (gh * gw / merge^2).
    num_frames: frames encoded (1 for an image).
    """

    tokens: torch.Tensor | None = None
    keep: torch.Tensor | None = None
    tokens_per_frame: int | None = None
    num_frames: int | None = None


@dataclass
class MultimodalEmbeddings(ModelOutput):
    """LLM inputs of one multimodal prompt (batch of one, as the official code).

    inputs_embeds: [1, L', D] with `<image>` / `<REGION>` rows replaced by vision / object tokens;
    attention_mask: Long [1, L'] of ones; input_ids: [1, L'] the ids after compression dropped the
    `<image>` positions of unchanged video tokens (L' <= L); object_tokens / visual_tokens: the rows that
    were put in (None when the prompt had none).
    """

    inputs_embeds: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    input_ids: torch.Tensor | None = None
    object_tokens: torch.Tensor | None = None
    visual_tokens: torch.Tensor | None = None


@dataclass
class PixelReferCausalLMOutputWithPast(CausalLMOutputWithPast):
    """`CausalLMOutputWithPast` plus the multimodal features the forward pass computed (None when not).

    object_tokens: [sum_i n_i, D]; visual_tokens: [n_kept, D] (full model only).
    """

    object_tokens: torch.Tensor | None = None
    visual_tokens: torch.Tensor | None = None
