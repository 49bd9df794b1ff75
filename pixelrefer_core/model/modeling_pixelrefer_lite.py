"""PixelRefer-Lite: object tokens from SAOT + OCI, fed to a Qwen2.5 LLM in place of `<REGION>` tokens.

Module tree (state_dict keys exactly as the released checkpoints, Lite reference §5.4):

    PixelReferLiteForCausalLM
      model: PixelReferLiteModel (a Qwen2Model)
        embed_tokens, layers.*, norm                 the LLM
        vision_encoder: PixelReferVisionEncoder      -> model.vision_encoder.vision_encoder.*
        mm_projector: MlpGeluProjector               -> model.mm_projector.readout.{0,2}.* (unused by Lite)
        region_encoder: PixelReferLiteRegionEncoder  -> model.region_encoder.*
      lm_head (tied to embed_tokens when config.tie_word_embeddings)

Object tokens are computed by `object_tokens.compute_object_tokens` (packed over requests); this class
owns the parity switches (`reuse_first_local_crop`, `round_pixels_to_bf16`, from the config), the swap of
`<REGION>` embeddings for object tokens, and `forward` / `generate` with `region_inputs=`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, Qwen2ForCausalLM, Qwen2Model

from pixelrefer_core.errors import PromptError

from .configuration_pixelrefer import PixelReferLiteConfig
from .modeling_common import (
    MlpGeluProjector,
    MultimodalCausalLMMixin,
    PixelReferBasePreTrainedModel,
    build_vision_encoder,
    replace_placeholders,
)
from .modeling_outputs import MultimodalEmbeddings, RegionFeatures
from .object_tokens import EncoderStats, ObjectTokenRequest, compute_object_tokens
from .region_encoder import PixelReferLiteRegionEncoder

__all__ = ["PixelReferLiteForCausalLM", "PixelReferLiteModel", "PixelReferLitePreTrainedModel"]

# Number of heads of the region encoder's fusion attention in the released model (Lite reference §3).
REGION_ENCODER_HEADS = 8


class PixelReferLitePreTrainedModel(PixelReferBasePreTrainedModel):
    config: PixelReferLiteConfig
    config_class = PixelReferLiteConfig
    # Present in our model, never used by Lite, possibly absent from a checkpoint: allowed to be missing.
    _optional_checkpoint_keys = (r"^model\.mm_projector\.", r"^model\.region_encoder\.mask_embedding\.")


class PixelReferLiteModel(PixelReferLitePreTrainedModel, Qwen2Model):
    """The Qwen2 LLM plus the vision tower, the (unused) projector and the region encoder."""

    def __init__(self, config: PixelReferLiteConfig):
        Qwen2Model.__init__(self, config)
        self.vision_encoder = build_vision_encoder(config)
        self.mm_projector = MlpGeluProjector(config.mm_hidden_size, config.hidden_size)
        self.region_encoder = PixelReferLiteRegionEncoder(
            config.mm_hidden_size,
            config.hidden_size,
            num_heads=REGION_ENCODER_HEADS,
            mask_num=config.mask_num,
        )
        self.post_init()


# The mixin's generate() takes multimodal kwargs that GenerationMixin's signature lacks (mypy: misc).
class PixelReferLiteForCausalLM(  # type: ignore[misc]
    MultimodalCausalLMMixin, PixelReferLitePreTrainedModel, Qwen2ForCausalLM
):
    """Qwen2ForCausalLM whose inner model carries the object tokenizer.

    `forward(input_ids, region_inputs=ObjectTokenRequest)` / `generate(...)` compute the object tokens and
    put them at the `<REGION>` positions of `input_ids` [1, L] (see `MultimodalCausalLMMixin`); without
    `region_inputs` they are Qwen2's.
    """

    model: PixelReferLiteModel
    _multimodal_kwargs: ClassVar[tuple[str, ...]] = ("region_inputs",)

    def __init__(self, config: PixelReferLiteConfig):
        PixelReferLitePreTrainedModel.__init__(self, config)
        self.model = PixelReferLiteModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    # ---- object tokens -------------------------------------------------------------------------------
    def get_region_features(
        self,
        requests: Sequence[ObjectTokenRequest],
        *,
        reuse_first_local_crop: bool | None = None,
        round_pixels_to_bf16: bool | None = None,
        max_encoder_patches: int | None = None,
        stats: EncoderStats | None = None,
    ) -> list[torch.Tensor]:
        """Object tokens for several requests in one packed vision-encoder pass.

        Returns one tensor per request, [num_masks_i * mask_num, hidden_size], in the model's dtype and
        device; masks in request order, `mask_num` tokens each (the order `<REGION>` tokens consume them).
        The parity switches default to the config's values.
        """
        cfg = self.config
        reuse = cfg.reuse_first_local_crop if reuse_first_local_crop is None else reuse_first_local_crop
        round_bf16 = cfg.round_pixels_to_bf16 if round_pixels_to_bf16 is None else round_pixels_to_bf16
        with torch.inference_mode():
            return compute_object_tokens(
                self.model.vision_encoder,
                self.model.region_encoder,
                list(requests),
                mask_num=cfg.mask_num,
                reuse_first_local_crop=reuse,
                round_pixels_to_bf16=round_bf16,
                dtype=self.dtype,
                device=self.device,
                max_encoder_patches=max_encoder_patches,
                total_max_pixels=cfg.total_max_pixels,
                merge_size=cfg.spatial_merge_size,
                stats=stats,
            )

    def region_features(self, request: ObjectTokenRequest) -> RegionFeatures:
        """Object tokens of one request with their count per mask (always `mask_num` in Lite)."""
        tokens = self.get_region_features([request])[0]
        return RegionFeatures(
            tokens=tokens, tokens_per_mask=(self.config.mask_num,) * len(request.mask_frame_ids)
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
        ids = input_ids.to(self.device)
        embeds = self.get_input_embeddings()(ids)
        return replace_placeholders(embeds, ids, region_id, object_tokens, "<REGION>")

    def prepare_inputs_embeds(self, input_ids: torch.Tensor, **multimodal: Any) -> MultimodalEmbeddings:
        """LLM inputs of a prompt `input_ids` [1, L] (or [L]) and its `region_inputs` (an ObjectTokenRequest)."""
        request = multimodal.get("region_inputs")
        ids = input_ids.reshape(-1)
        if input_ids.dim() == 2 and input_ids.shape[0] != 1:
            raise ValueError(f"multimodal inputs take one prompt (batch of 1), got {input_ids.shape[0]}")
        tokens = None
        if request is not None:
            tokens = self.get_region_features([request])[0]
            embeds = self.embed_with_object_tokens(ids, tokens)
        else:
            embeds = self.get_input_embeddings()(ids.to(self.device))
        return MultimodalEmbeddings(
            inputs_embeds=embeds[None],
            attention_mask=torch.ones(1, embeds.shape[0], dtype=torch.long, device=embeds.device),
            input_ids=ids[None],
            object_tokens=tokens,
        )


AutoConfig.register(PixelReferLiteConfig.model_type, PixelReferLiteConfig, exist_ok=True)
AutoModelForCausalLM.register(PixelReferLiteConfig, PixelReferLiteForCausalLM, exist_ok=True)
