"""What both variants' modeling modules share: the pretrained-model base (strict loading, vision RoPE init),
the `mlp2x_gelu` projector, the vision-encoder builder, placeholder replacement and the forward/generate
path that takes multimodal inputs.

State-dict layout shared by both (reference: Lite §5.4, full §7.1): the Qwen2 LLM (`model.embed_tokens`,
`model.layers.*`, `model.norm`, `lm_head`), `model.vision_encoder.vision_encoder.*`,
`model.mm_projector.readout.{0,2}.*` and `model.region_encoder.*` (variant-specific modules).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from torch import nn
from transformers.models.qwen2.modeling_qwen2 import Qwen2PreTrainedModel

from pixelrefer_core.checkpoints import check_loading_info, resolve_checkpoint_dir
from pixelrefer_core.errors import ModelLoadError, PromptError

from .configuration_pixelrefer import PixelReferBaseConfig
from .modeling_outputs import MultimodalEmbeddings, PixelReferCausalLMOutputWithPast
from .modeling_vision import (
    ATTN_IMPLEMENTATIONS,
    PixelReferVisionEncoder,
    VisionRotaryEmbedding,
    rope_inv_freq,
)

__all__ = [
    "MlpGeluProjector",
    "MultimodalCausalLMMixin",
    "PixelReferBasePreTrainedModel",
    "build_vision_encoder",
    "replace_placeholders",
]


class MlpGeluProjector(nn.Module):
    """`mlp2x_gelu` projector: Linear(mm_hidden, D) -> GELU (erf) -> Linear(D, D) (`model.mm_projector.readout`).

    The full model projects its vision tokens with it; Lite keeps it only so the released keys load."""

    def __init__(self, mm_hidden_size: int, hidden_size: int):
        super().__init__()
        self.readout = nn.Sequential(
            nn.Linear(mm_hidden_size, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.readout(x)
        return out


def build_vision_encoder(config: PixelReferBaseConfig) -> PixelReferVisionEncoder:
    """The vision tower of `config` (raises ValueError naming an unknown `mm_attn_implementation`)."""
    attn = config.mm_attn_implementation or "sdpa"
    if attn not in ATTN_IMPLEMENTATIONS:
        raise ValueError(
            f"{type(config).__name__}: mm_attn_implementation {attn!r} is unknown to the vision encoder; "
            f"use one of {ATTN_IMPLEMENTATIONS}"
        )
    return PixelReferVisionEncoder(config.vision_config, attn_implementation=attn)


def replace_placeholders(
    embeds: torch.Tensor, input_ids: torch.Tensor, token_id: int, rows: torch.Tensor, what: str
) -> torch.Tensor:
    """`embeds` [L, D] with the positions where `input_ids` [L] == token_id replaced, in order, by `rows`.

    The official code writes `embedding * 0 + row`; a plain replacement is the same for finite values.
    Raises PromptError when the number of positions differs from the number of rows.
    """
    where = input_ids.to(embeds.device) == token_id
    slots = int(where.sum())
    if slots != rows.shape[0]:
        raise PromptError(f"prompt has {slots} {what} tokens but {rows.shape[0]} {what} rows were computed")
    if slots == 0:
        return embeds
    out = embeds.clone()
    out[where] = rows.to(device=out.device, dtype=out.dtype)
    return out


class PixelReferBasePreTrainedModel(Qwen2PreTrainedModel):
    """Qwen2's pretrained-model base, with strict loading and the vision RoPE buffer re-initialised.

    `_optional_checkpoint_keys`: regexes of keys the model holds but never uses, which a checkpoint may omit.
    """

    config: PixelReferBaseConfig
    _no_split_modules = ["Qwen2DecoderLayer", "VisionEncoderLayer"]
    _optional_checkpoint_keys: ClassVar[tuple[str, ...]] = ()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        # The vision RoPE frequencies are a non-persistent buffer: after a meta-device load they must be
        # recomputed (transformers only does this for LLM rotary modules that keep `original_inv_freq`).
        if isinstance(module, VisionRotaryEmbedding):
            fresh = rope_inv_freq(module.inv_freq.numel() * 2, float(self.config.vision_config.rope_theta))
            module.inv_freq.copy_(fresh.to(module.inv_freq.device, module.inv_freq.dtype))

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | os.PathLike[str], *args: Any, **kwargs: Any
    ) -> Any:
        """transformers' loader (.safetensors / .bin, sharded or not, tied lm_head), made strict: a missing
        path or a key mismatch raises ModelLoadError naming the checkpoint and listing the keys.
        `revision` / `cache_dir` apply to hub ids (see `checkpoints.resolve_checkpoint`)."""
        want_info = kwargs.pop("output_loading_info", False)
        ckpt = resolve_checkpoint_dir(
            pretrained_model_name_or_path,
            kwargs.pop("revision", None),
            cache_dir=kwargs.pop("cache_dir", None),
        )
        # Let transformers report shape mismatches in the loading info; check_loading_info raises on them.
        kwargs.setdefault("ignore_mismatched_sizes", True)
        try:
            loaded: Any = super().from_pretrained(ckpt, *args, output_loading_info=True, **kwargs)
        except (OSError, RuntimeError, ValueError, SafetensorError) as err:  # damaged or foreign weight files
            raise ModelLoadError(f"{ckpt}: cannot load {cls.__name__} weights: {err}") from err
        model, info = loaded
        check_loading_info(
            info,
            tie_word_embeddings=bool(model.config.tie_word_embeddings),
            optional_key_patterns=cls._optional_checkpoint_keys,
            model_name=cls.__name__,
            where=str(ckpt),
        )
        return (model, info) if want_info else model


class MultimodalCausalLMMixin:
    """`forward` / `generate` that take the variant's multimodal inputs (put it first in the bases).

    A variant lists its multimodal keyword arguments in `_multimodal_kwargs` and implements
    `prepare_inputs_embeds(input_ids, **those) -> MultimodalEmbeddings`. With any of them given, `forward`
    and `generate` build the embeddings (vision / object tokens in place of `<image>` / `<REGION>`, video
    compression applied) and run the LLM on them, as the official code does; `generate` then returns only
    the new tokens and the repetition penalty sees only generated tokens. Multimodal inputs take a batch of
    one prompt (as the official code); `pixelrefer_core.inference.DescribeEngine` batches.
    """

    _multimodal_kwargs: ClassVar[tuple[str, ...]] = ()

    def prepare_inputs_embeds(self, input_ids: torch.Tensor, **multimodal: Any) -> MultimodalEmbeddings:
        raise NotImplementedError

    def _pop_multimodal(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        found = {k: kwargs.pop(k) for k in self._multimodal_kwargs if k in kwargs}
        return found if any(v is not None for v in found.values()) else {}

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> Any:
        multimodal = self._pop_multimodal(kwargs)
        if not multimodal:
            return super().forward(  # type: ignore[misc]
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=past_key_values,
                inputs_embeds=inputs_embeds,
                labels=labels,
                use_cache=use_cache,
                logits_to_keep=logits_to_keep,
                **kwargs,
            )
        if input_ids is None or inputs_embeds is not None or labels is not None:
            raise ValueError("multimodal inputs need input_ids (and no inputs_embeds or labels)")
        if past_key_values is not None and past_key_values.get_seq_length() > 0:
            raise ValueError("multimodal inputs go with the first forward pass, not with a filled cache")
        embedded = self.prepare_inputs_embeds(input_ids, **multimodal)
        out = super().forward(  # type: ignore[misc]
            inputs_embeds=embedded.inputs_embeds,
            attention_mask=embedded.attention_mask,
            past_key_values=past_key_values,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )
        return PixelReferCausalLMOutputWithPast(
            loss=out.loss,
            logits=out.logits,
            past_key_values=out.past_key_values,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
            object_tokens=embedded.object_tokens,
            visual_tokens=embedded.visual_tokens,
        )

    def generate(self, inputs: torch.Tensor | None = None, **kwargs: Any) -> Any:
        multimodal = self._pop_multimodal(kwargs)
        input_ids = kwargs.pop("input_ids", inputs)
        if not multimodal:
            return super().generate(input_ids, **kwargs)  # type: ignore[misc]
        if input_ids is None:
            raise ValueError("multimodal inputs need input_ids")
        kwargs.pop("attention_mask", None)  # the embeddings come with their own (compression shortens them)
        embedded = self.prepare_inputs_embeds(input_ids, **multimodal)
        with warnings.catch_warnings():
            # transformers warns that a repetition penalty then covers the generated tokens only: exactly
            # what the official pipeline does (it too passes only inputs_embeds).
            warnings.filterwarnings("ignore", message="Passing `repetition_penalty` with `inputs_embeds`")
            return super().generate(  # type: ignore[misc]
                inputs_embeds=embedded.inputs_embeds, attention_mask=embedded.attention_mask, **kwargs
            )
