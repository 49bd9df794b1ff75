"""PixelRefer-Lite: object tokens from SAOT + OCI, fed to a Qwen2.5 LLM in place of `<REGION>` tokens.

Module tree (state_dict keys exactly as the released checkpoints, reference §5.4):

    PixelReferLiteForCausalLM
      model: PixelReferLiteModel (a Qwen2Model)
        embed_tokens, layers.*, norm                 the LLM
        vision_encoder: PixelReferVisionEncoder      -> model.vision_encoder.vision_encoder.*
        mm_projector: MlpGeluProjector               -> model.mm_projector.readout.{0,2}.* (unused by Lite)
        region_encoder: RegionEncoder                -> model.region_encoder.*
      lm_head (tied to embed_tokens when config.tie_word_embeddings)

Object tokens are computed by `pixelrefer_core.model.object_tokens.compute_object_tokens`; this class
owns the parity switches (`reuse_first_local_crop`, `round_pixels_to_bf16`, from the config) and the
swap of `<REGION>` embeddings for object tokens (`embed_with_object_tokens`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, Qwen2ForCausalLM, Qwen2Model
from transformers.models.qwen2.modeling_qwen2 import Qwen2PreTrainedModel

from pixelrefer_core.errors import ModelLoadError, PromptError

from .checkpoints import check_loading_info, resolve_checkpoint_dir
from .configuration_pixelrefer import PixelReferLiteConfig
from .configuration_vision import PixelReferVisionConfig
from .modeling_vision import (
    ATTN_IMPLEMENTATIONS,
    PixelReferVisionEncoder,
    VisionRotaryEmbedding,
    rope_inv_freq,
)
from .object_tokens import ObjectTokenRequest, compute_object_tokens
from .region_encoder import RegionEncoder

# Number of heads of the region encoder's fusion attention in the released model (reference §3).
REGION_ENCODER_HEADS = 8
# Present in our model, never used by Lite, possibly absent from a checkpoint: allowed to be missing.
OPTIONAL_KEY_PATTERNS = (r"^model\.mm_projector\.", r"^model\.region_encoder\.mask_embedding\.")


class MlpGeluProjector(nn.Module):
    """`mlp2x_gelu` projector: Linear(mm_hidden, D) -> GELU -> Linear(D, D). Kept only so the released
    keys `model.mm_projector.readout.{0,2}` load; Lite object tokens never pass through it."""

    def __init__(self, mm_hidden_size: int, hidden_size: int):
        super().__init__()
        self.readout = nn.Sequential(
            nn.Linear(mm_hidden_size, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(x)


class PixelReferLitePreTrainedModel(Qwen2PreTrainedModel):
    config: PixelReferLiteConfig
    config_class = PixelReferLiteConfig
    _no_split_modules = ["Qwen2DecoderLayer", "VisionEncoderLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        # The vision RoPE frequencies are a non-persistent buffer: after a meta-device load they must be
        # recomputed (transformers only does this for LLM rotary modules that keep `original_inv_freq`).
        if isinstance(module, VisionRotaryEmbedding):
            dim = module.inv_freq.numel() * 2
            theta = float(self.config.resolved_vision_config().get("rope_theta", 10000.0))
            fresh = rope_inv_freq(dim, theta)
            module.inv_freq.copy_(fresh.to(module.inv_freq.device, module.inv_freq.dtype))


class PixelReferLiteModel(PixelReferLitePreTrainedModel, Qwen2Model):
    """The Qwen2 LLM plus the vision tower, the (unused) projector and the region encoder."""

    def __init__(self, config: PixelReferLiteConfig):
        Qwen2Model.__init__(self, config)
        vision_config = PixelReferVisionConfig(**config.resolved_vision_config())
        attn = config.mm_attn_implementation or "sdpa"
        if attn not in ATTN_IMPLEMENTATIONS:
            raise ValueError(
                f"PixelReferLiteModel: mm_attn_implementation {attn!r} is unknown to the vision encoder; "
                f"use one of {ATTN_IMPLEMENTATIONS}"
            )
        self.vision_encoder = PixelReferVisionEncoder(vision_config, attn_implementation=attn)
        self.mm_projector = MlpGeluProjector(config.mm_hidden_size, config.hidden_size)
        self.region_encoder = RegionEncoder(
            config.mm_hidden_size,
            config.hidden_size,
            num_heads=REGION_ENCODER_HEADS,
            mask_num=config.mask_num,
        )
        self.post_init()


class PixelReferLiteForCausalLM(PixelReferLitePreTrainedModel, Qwen2ForCausalLM):
    """Qwen2ForCausalLM whose inner model carries the object tokenizer.

    `forward`/`generate` are Qwen2's: pass `inputs_embeds` built by `embed_with_object_tokens`.
    """

    def __init__(self, config: PixelReferLiteConfig):
        PixelReferLitePreTrainedModel.__init__(self, config)
        self.model = PixelReferLiteModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | os.PathLike[str], *args: Any, **kwargs: Any
    ) -> Any:
        """transformers' loader (.safetensors / .bin, sharded or not, tied lm_head), made strict: a missing
        path or a key mismatch raises ModelLoadError naming the checkpoint and listing the keys
        (`model.mm_projector.*` and `model.region_encoder.mask_embedding.*` may be absent)."""
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
            model, info = loaded
        except (OSError, RuntimeError, ValueError) as err:
            raise ModelLoadError(f"{ckpt}: cannot load PixelRefer-Lite weights: {err}") from err
        check_loading_info(
            info,
            tie_word_embeddings=bool(model.config.tie_word_embeddings),
            optional_key_patterns=OPTIONAL_KEY_PATTERNS,
            model_name=cls.__name__,
            where=str(ckpt),
        )
        return (model, info) if want_info else model

    # ---- object tokens -------------------------------------------------------------------------------
    def get_region_features(
        self,
        requests: Sequence[ObjectTokenRequest],
        *,
        reuse_first_local_crop: bool | None = None,
        round_pixels_to_bf16: bool | None = None,
    ) -> list[torch.Tensor]:
        """Object tokens for several requests in one packed vision-encoder pass.

        Returns one tensor per request, [num_masks_i * mask_num, hidden_size], in the model's dtype and
        device; masks in request order, `mask_num` tokens each (the order `<REGION>` tokens consume them).
        The parity switches default to the config's values.
        """
        cfg = self.config
        with torch.inference_mode():
            return compute_object_tokens(
                self.model.vision_encoder,
                self.model.region_encoder,
                list(requests),
                mask_num=cfg.mask_num,
                reuse_first_local_crop=cfg.reuse_first_local_crop
                if reuse_first_local_crop is None
                else reuse_first_local_crop,
                round_pixels_to_bf16=cfg.round_pixels_to_bf16
                if round_pixels_to_bf16 is None
                else round_pixels_to_bf16,
                dtype=self.dtype,
                device=self.device,
            )

    def object_tokens(
        self,
        frames: Sequence[np.ndarray],
        masks: np.ndarray | torch.Tensor,
        mask_frame_ids: Sequence[int],
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Object tokens of one request: frames RGB HxWx3 uint8, masks [N,H,W] {0,1}, mask_frame_ids[i]
        the index into `frames` of mask i. Returns [N * mask_num, hidden_size]."""
        request = ObjectTokenRequest(
            frames=list(frames), masks=masks, mask_frame_ids=list(mask_frame_ids), generator=generator
        )
        return self.get_region_features([request])[0]

    def embed_with_object_tokens(self, input_ids: torch.Tensor, object_tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings of `input_ids` [L] with the `<REGION>` positions replaced, in order, by the rows
        of `object_tokens` [n_region, D]. Returns [L, D]. Raises PromptError when the counts differ."""
        region_id = self.config.region_token_index
        if region_id is None:
            raise PromptError("config.region_token_index is not set; load the model with load_pixelrefer")
        embeds = self.get_input_embeddings()(input_ids.to(self.device))
        where = input_ids.to(self.device) == region_id
        n_slots = int(where.sum())
        if n_slots != object_tokens.shape[0]:
            raise PromptError(
                f"prompt has {n_slots} <REGION> tokens but {object_tokens.shape[0]} object tokens were computed"
            )
        embeds = embeds.clone()
        embeds[where] = object_tokens.to(device=embeds.device, dtype=embeds.dtype)
        return embeds


AutoConfig.register(PixelReferLiteConfig.model_type, PixelReferLiteConfig, exist_ok=True)
AutoModelForCausalLM.register(PixelReferLiteConfig, PixelReferLiteForCausalLM, exist_ok=True)

__all__ = [
    "MlpGeluProjector",
    "PixelReferLiteForCausalLM",
    "PixelReferLiteModel",
    "PixelReferLitePreTrainedModel",
]
