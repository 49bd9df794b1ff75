"""PixelRefer (full, vision-object): the image or video as `<image>` tokens and 0..32 object tokens per mask,
fed to a Qwen2.5 LLM (full reference §1-§5).

Module tree (state_dict keys exactly as the released PixelRefer-2B / -7B, full reference §7.1):

    PixelReferForCausalLM
      model: PixelReferModel (a Qwen2Model)
        embed_tokens, layers.*, norm                 the LLM
        vision_encoder: PixelReferVisionEncoder      -> model.vision_encoder.vision_encoder.*
        mm_projector: MlpGeluProjector               -> model.mm_projector.readout.{0,2}.*  (vision tokens)
        region_encoder: PixelReferRegionEncoder      -> model.region_encoder.{pos_linear,feat_linear.0,2}.*
      lm_head (tied to embed_tokens when config.tie_word_embeddings)

Vision tokens (§2): frames -> vision encoder (a video's rows merge-grouped) -> video: each frame's feature
grid bilinearly halved (= 2x2 block means), image: identity -> `mm_projector`; a video of T > 1 frames is
then compressed: merged token k of frame t >= 1 is kept when mean |x_t,k - x_t-1,k| * 255 over its 4 pixel
rows (model dtype) exceeds `compression_threshold`, all of frame 0 are kept, and a frame with none kept
keeps its first. Dropped tokens leave the prompt with their `<image>` positions (§2.5).
Object tokens (§3, §4): `PixelReferRegionEncoder` over the crops' vision features.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, Qwen2ForCausalLM, Qwen2Model

from pixelrefer_core.errors import PromptError

from .configuration_pixelrefer import PixelReferConfig
from .modeling_common import (
    MlpGeluProjector,
    MultimodalCausalLMMixin,
    PixelReferBasePreTrainedModel,
    build_vision_encoder,
    replace_placeholders,
)
from .modeling_outputs import MultimodalEmbeddings, RegionFeatures, VisualFeatures
from .object_tokens import EncoderStats, ImageKey, encode_packed
from .processing_pixelrefer import RegionInputs, VisualInputs, prepare_region_inputs, prepare_visual_inputs
from .region_encoder import PixelReferRegionEncoder

__all__ = ["PixelReferForCausalLM", "PixelReferModel", "PixelReferPreTrainedModel", "visual_image_keys"]


class PixelReferPreTrainedModel(PixelReferBasePreTrainedModel):
    config: PixelReferConfig
    config_class = PixelReferConfig


class PixelReferModel(PixelReferPreTrainedModel, Qwen2Model):
    """The Qwen2 LLM plus the vision tower, the projector of vision tokens and the region encoder."""

    def __init__(self, config: PixelReferConfig):
        Qwen2Model.__init__(self, config)
        self.vision_encoder = build_vision_encoder(config)
        self.mm_projector = MlpGeluProjector(config.mm_hidden_size, config.hidden_size)
        self.region_encoder = PixelReferRegionEncoder(
            config.mm_hidden_size, config.hidden_size, config.mask_num
        )
        self.post_init()


def visual_image_keys(group: Hashable, visual: VisualInputs) -> list[ImageKey]:
    """Keys of a visual input's frames in a packed encoder pass (`encode_images`)."""
    return [("frame", group, t) for t in range(visual.num_frames)]


# The mixin's generate() takes multimodal kwargs that GenerationMixin's signature lacks (mypy: misc).
class PixelReferForCausalLM(MultimodalCausalLMMixin, PixelReferPreTrainedModel, Qwen2ForCausalLM):  # type: ignore[misc]
    """Qwen2ForCausalLM whose inner model carries the vision tokenizer and the object tokenizer.

    `forward` / `generate` take `visual_inputs=` (VisualInputs), `region_inputs=` (RegionInputs) and
    `generator=` (k-means RNG) beside `input_ids` [1, L] from `PixelReferProcessor`.
    """

    model: PixelReferModel
    _multimodal_kwargs: ClassVar[tuple[str, ...]] = ("visual_inputs", "region_inputs", "generator")

    def __init__(self, config: PixelReferConfig):
        PixelReferPreTrainedModel.__init__(self, config)
        self.model = PixelReferModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    # ---- the packed vision-encoder pass ----------------------------------------------------------------
    @torch.inference_mode()
    def encode_images(
        self,
        images: dict[ImageKey, Any],
        *,
        max_encoder_patches: int | None = None,
        stats: EncoderStats | None = None,
    ) -> dict[ImageKey, torch.Tensor]:
        """Vision features [patches, C] of preprocessed images (frames and crops together, block-diagonal)."""
        return encode_packed(
            self.model.vision_encoder,
            images,
            max_patches=max_encoder_patches,
            device=self.device,
            dtype=self.dtype,
            round_bf16=self.config.round_pixels_to_bf16,
            stats=stats,
        )

    # ---- vision tokens ------------------------------------------------------------------------------
    def compression_keep(self, visual: VisualInputs) -> torch.Tensor:
        """bool [T * tokens_per_frame]: which vision tokens (and `<image>` positions) survive compression."""
        per_frame = visual.tokens_per_frame
        if not visual.is_video or visual.num_frames == 1:
            return torch.ones(visual.num_frames * per_frame, dtype=torch.bool, device=self.device)
        pix = torch.from_numpy(np.stack([f.pixel_values for f in visual.frames])).to(self.device)
        if self.config.round_pixels_to_bf16:
            pix = pix.to(torch.bfloat16)
        # Decided on the pixel rows in the model dtype (bf16 for released weights, §8.10); merge-grouped
        # rows: m*m consecutive rows are one merged token.
        x = pix.to(self.dtype).reshape(visual.num_frames, per_frame, -1)
        diff = (x[1:] - x[:-1]).abs().mean(dim=-1) * 255
        keep = torch.cat(
            [torch.ones_like(diff[:1], dtype=torch.bool), diff > self.config.compression_threshold]
        )
        keep[~keep.any(dim=-1), 0] = True
        return keep.reshape(-1)

    def visual_features_from(
        self, frame_feats: Sequence[torch.Tensor], visual: VisualInputs
    ) -> VisualFeatures:
        """Vision tokens from the encoder outputs of `visual`'s frames ([gh*gw, C] each, in their row order)."""
        _, gh, gw = visual.frames[0].grid_thw
        m = visual.merge_size
        with torch.inference_mode():
            per_frame = []
            for feats in frame_feats:
                if m > 1:  # merge-grouped rows -> raster grid -> bilinear to (gh/m, gw/m): 2x2 block means
                    grid = (
                        feats.reshape(gh // m, gw // m, m, m, -1).permute(0, 2, 1, 3, 4).reshape(gh, gw, -1)
                    )
                    x = F.interpolate(
                        grid.permute(2, 0, 1)[None],
                        size=(gh // m, gw // m),
                        mode="bilinear",
                        align_corners=False,
                    )
                    feats = x[0].permute(1, 2, 0).reshape(-1, grid.shape[-1])
                per_frame.append(feats)
            tokens = self.model.mm_projector(torch.cat(per_frame))
            keep = self.compression_keep(visual)
            return VisualFeatures(
                tokens=tokens[keep],
                keep=keep,
                tokens_per_frame=visual.tokens_per_frame,
                num_frames=visual.num_frames,
            )

    def get_visual_features(self, visual: VisualInputs) -> VisualFeatures:
        """Vision tokens of a preprocessed image or video (one vision-encoder pass)."""
        keys = visual_image_keys("visual", visual)
        feats = self.encode_images(dict(zip(keys, visual.frames, strict=True)))
        return self.visual_features_from([feats[k] for k in keys], visual)

    def visual_tokens(
        self, frames: Sequence[np.ndarray], timestamps: Sequence[float] | None = None
    ) -> torch.Tensor:
        """[n_kept, hidden] vision tokens: an image when `timestamps` is None (one frame), else a video
        (stride 2 downsampling and token compression)."""
        visual = prepare_visual_inputs(list(frames), timestamps, self.config)
        tokens = self.get_visual_features(visual).tokens
        assert tokens is not None
        return tokens

    # ---- object tokens ------------------------------------------------------------------------------
    def region_features_from(
        self,
        crop_feats: Sequence[torch.Tensor],
        region: RegionInputs,
        generator: torch.Generator | None = None,
    ) -> RegionFeatures:
        """Object tokens from the encoder outputs of `region`'s crops; k-means draws from `generator` in mask
        order (None: a fresh generator seeded 0)."""
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        feats = [
            f.view(img.grid_thw[1], img.grid_thw[2], -1)
            for f, img in zip(crop_feats, region.images, strict=True)
        ]
        with torch.inference_mode():
            tokens, counts = self.model.region_encoder(
                feats,
                [torch.from_numpy(c.grid_mask) for c in region.crops],
                [c.box for c in region.crops],
                [c.image_size for c in region.crops],
                [gen] * len(feats),
            )
        if tuple(counts) != region.tokens_per_mask:  # the grid mask decides both; a mismatch is a bug
            raise RuntimeError(
                f"object token counts {counts} differ from the prompt's {region.tokens_per_mask}"
            )
        return RegionFeatures(tokens=tokens, tokens_per_mask=tuple(counts))

    def get_region_features(
        self, region: RegionInputs, generator: torch.Generator | None = None
    ) -> RegionFeatures:
        """Object tokens of preprocessed crops (one vision-encoder pass)."""
        keys: list[ImageKey] = [("crop", i) for i in range(len(region.images))]
        feats = self.encode_images(dict(zip(keys, region.images, strict=True)))
        return self.region_features_from([feats[k] for k in keys], region, generator)

    def object_tokens(
        self,
        mask_frames: Sequence[np.ndarray],
        masks: np.ndarray | torch.Tensor,
        mask_frame_ids: Sequence[int],
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """[sum_i n_i, hidden] object tokens, n_i in 0..mask_num for mask i (in mask order); masks [N, H, W]
        on `mask_frames[mask_frame_ids[i]]`."""
        region = prepare_region_inputs(list(mask_frames), masks, list(mask_frame_ids), self.config)
        tokens = self.get_region_features(region, generator).tokens
        assert tokens is not None
        return tokens

    # ---- LLM inputs ---------------------------------------------------------------------------------
    def embed_prompt(
        self, input_ids: torch.Tensor, visual: VisualFeatures, region: RegionFeatures | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids [L'], embeddings [L', D]) of a prompt [L]: compression-dropped `<image>` positions removed,
        the others replaced by the vision tokens in order, `<REGION>` positions by the object tokens."""
        image_id, region_id = self.config.image_token_index, self.config.region_token_index
        if image_id is None or region_id is None:
            raise PromptError(
                "config.image_token_index / region_token_index unset; load with load_pixelrefer"
            )
        assert visual.keep is not None and visual.tokens is not None
        ids = input_ids.reshape(-1).to(self.device)
        is_image = ids == image_id
        if int(is_image.sum()) != visual.keep.numel():
            raise PromptError(
                f"prompt has {int(is_image.sum())} <image> tokens but {visual.keep.numel()} vision tokens"
            )
        kept = torch.ones_like(is_image)
        kept[is_image] = visual.keep.to(ids.device)
        ids = ids[kept]
        embeds = self.get_input_embeddings()(ids)
        embeds = replace_placeholders(embeds, ids, image_id, visual.tokens, "<image>")
        rows = region.tokens if region is not None and region.tokens is not None else embeds[:0]
        return ids, replace_placeholders(embeds, ids, region_id, rows, "<REGION>")

    def prepare_inputs_embeds(self, input_ids: torch.Tensor, **multimodal: Any) -> MultimodalEmbeddings:
        """LLM inputs of `input_ids` [1, L] with `visual_inputs`, optional `region_inputs` and `generator`."""
        visual_inputs: VisualInputs | None = multimodal.get("visual_inputs")
        region_inputs: RegionInputs | None = multimodal.get("region_inputs")
        if visual_inputs is None:
            raise ValueError("the full PixelRefer needs visual_inputs (the image or video it is asked about)")
        if input_ids.dim() == 2 and input_ids.shape[0] != 1:
            raise ValueError(f"multimodal inputs take one prompt (batch of 1), got {input_ids.shape[0]}")
        visual = self.get_visual_features(visual_inputs)
        region = None
        if region_inputs is not None:
            region = self.get_region_features(region_inputs, multimodal.get("generator"))
        ids, embeds = self.embed_prompt(input_ids, visual, region)
        return MultimodalEmbeddings(
            inputs_embeds=embeds[None],
            attention_mask=torch.ones(1, embeds.shape[0], dtype=torch.long, device=embeds.device),
            input_ids=ids[None],
            object_tokens=None if region is None else region.tokens,
            visual_tokens=visual.tokens,
        )


AutoConfig.register(PixelReferConfig.model_type, PixelReferConfig, exist_ok=True)
AutoModelForCausalLM.register(PixelReferConfig, PixelReferForCausalLM, exist_ok=True)
