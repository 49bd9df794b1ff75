"""Configuration of PixelRefer-Lite (object-only PixelRefer on a Qwen2.5 LLM).

No torch import here. Field names and values follow the released checkpoints' `config.json`
(reference §5.3); fields a released config lacks take the defaults below. The vision tower is
described by `vision_encoder_config` (a plain dict, kept that way so that it round-trips through
`config.json` untouched); when absent, the released VL3-SigLIP-NaViT settings are used.
"""

from __future__ import annotations

from typing import Any

from transformers import Qwen2Config

REGION_TOKEN = "<REGION>"
IMAGE_TOKEN = "<image>"


def _released_vision_config() -> dict[str, Any]:
    from pixelrefer_core.model.configuration_vision import RELEASED_VISION_CONFIG

    return dict(RELEASED_VISION_CONFIG)


class PixelReferLiteConfig(Qwen2Config):
    """Qwen2 LLM settings plus the multimodal fields PixelRefer-Lite reads.

    Parity switches (ours, not in released configs; both default to the corrected behaviour):
    - `reuse_first_local_crop`: when several masks share a frame, the official code gives all of them
      the first mask's 224x224 local crop (a bug, reference §8.3). False: each mask gets its own crop.
    - `round_pixels_to_bf16`: the official code casts pixel values to bf16 before the vision encoder.
      True reproduces that rounding even when the model runs in fp32 (CPU parity runs); a bf16 model
      rounds anyway, so False changes nothing there.
    """

    model_type = "pixelreferlite_qwen2"

    mm_vision_encoder: str = "DAMO-NLP-SG/VL3-SigLIP-NaViT"
    mm_projector_type: str = "mlp2x_gelu"
    mm_hidden_size: int = 1152
    mm_vision_select_layer: int = -2
    spatial_merge_size: int = 2
    mm_max_length: int = 8192
    use_token_compression: bool = True
    mask_num: int = 32
    image_aspect_ratio: str = "qwen2vl"
    max_frames: int = 180
    image_token_index: int | None = None
    region_token_index: int | None = None
    mm_attn_implementation: str | None = None
    vision_encoder_config: dict | None = None
    reuse_first_local_crop: bool = False
    round_pixels_to_bf16: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if not isinstance(self.mask_num, int) or self.mask_num < 1:
            raise ValueError(
                f"PixelReferLiteConfig: mask_num must be a positive integer, got {self.mask_num!r}"
            )
        vision = self.resolved_vision_config()
        vision_hidden = vision.get("hidden_size")
        if vision_hidden != self.mm_hidden_size:
            raise ValueError(
                f"PixelReferLiteConfig: mm_hidden_size ({self.mm_hidden_size}) must equal the vision encoder's "
                f"hidden_size ({vision_hidden}); object tokens are pooled from vision features of that width"
            )
        if self.mm_hidden_size % 8 != 0:
            raise ValueError(
                f"PixelReferLiteConfig: mm_hidden_size ({self.mm_hidden_size}) must be divisible by the 8 heads "
                "of the region encoder's fusion attention"
            )
        if not self.use_token_compression:
            raise ValueError(
                "PixelReferLiteConfig: use_token_compression must be true; the Lite model has no other input path"
            )

    def resolved_vision_config(self) -> dict[str, Any]:
        """The vision encoder's settings: `vision_encoder_config` when set, else the released ones."""
        if self.vision_encoder_config:
            return dict(self.vision_encoder_config)
        return _released_vision_config()


__all__ = ["PixelReferLiteConfig", "REGION_TOKEN", "IMAGE_TOKEN"]
