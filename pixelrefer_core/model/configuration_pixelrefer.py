"""Configurations of PixelRefer (full, vision-object) and PixelRefer-Lite (object-only) on a Qwen2.5 LLM.

No torch import here. Field names and values follow the released checkpoints' `config.json` (Lite
reference §5.3, full reference §7.2); fields a released config lacks take the defaults below. The vision
tower is the typed sub-config `vision_encoder_config` (`PixelReferVisionConfig`; a dict in `config.json`,
the released VL3-SigLIP-NaViT settings when absent).

The two variants share every field of `PixelReferBaseConfig` and differ in `model_type` (which
`load_pixelrefer` dispatches on) and in their parity switches. Parity switches are ours, not in released
configs; each defaults to the released behaviour unless its docstring says otherwise.
"""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import Qwen2Config

from .configuration_vision import PixelReferVisionConfig

__all__ = [
    "IMAGE_TOKEN",
    "REGION_TOKEN",
    "PixelReferBaseConfig",
    "PixelReferConfig",
    "PixelReferLiteConfig",
]

REGION_TOKEN = "<REGION>"
IMAGE_TOKEN = "<image>"

CROP_BUDGETS = ("per_request", "per_crop")
TIMESTAMP_ROUNDINGS = ("numpy", "python")


class PixelReferBaseConfig(Qwen2Config):
    """Qwen2 LLM settings plus the multimodal fields both variants read (not registered itself).

    mm_hidden_size: vision width C (1152); spatial_merge_size: video stride and processor merge size (2);
    mm_max_length: processor budget in LLM tokens per image (8192, i.e. 8192 * 4 * 196 px);
    mask_num: tokens per mask (Lite: exactly; full: at most) and k-means clusters (32);
    image_token_index / region_token_index: ids of `<image>` / `<REGION>` (set from the tokenizer at load);
    mm_attn_implementation: vision-encoder attention ("sdpa", "flash_attention_2", "eager"; None = sdpa).
    `round_pixels_to_bf16` (parity switch, default False): the official code casts pixel values to bf16
    before the vision encoder; True reproduces that rounding in an fp32 model (a bf16 model rounds anyway).
    """

    sub_configs_defaults: ClassVar[dict[str, Any]] = {"vision_encoder_config": PixelReferVisionConfig}

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
    vision_encoder_config: dict[str, Any] | PixelReferVisionConfig | None = None
    round_pixels_to_bf16: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        name = type(self).__name__
        if not isinstance(self.mask_num, int) or self.mask_num < 1:
            raise ValueError(f"{name}: mask_num must be a positive integer, got {self.mask_num!r}")
        vision_hidden = self.vision_config.hidden_size
        if vision_hidden != self.mm_hidden_size:
            raise ValueError(
                f"{name}: mm_hidden_size ({self.mm_hidden_size}) must equal the vision encoder's hidden_size "
                f"({vision_hidden}); object tokens are pooled from vision features of that width"
            )
        if not self.use_token_compression:
            raise ValueError(
                f"{name}: use_token_compression must be true; the released models have no other input path"
            )
        if self.spatial_merge_size < 1:
            raise ValueError(f"{name}: spatial_merge_size must be >= 1, got {self.spatial_merge_size}")

    @property
    def vision_config(self) -> PixelReferVisionConfig:
        """The vision encoder's typed configuration (`vision_encoder_config`)."""
        vision = self.vision_encoder_config
        if not isinstance(vision, PixelReferVisionConfig):  # set after __post_init__ by hand
            vision = PixelReferVisionConfig(**(vision or {}))
            self.vision_encoder_config = vision
        return vision

    @property
    def total_max_pixels(self) -> int:
        """The image processor's pixel budget before division: mm_max_length * merge^2 * 14^2 (6,422,528)."""
        patch = self.vision_config.patch_size
        return self.mm_max_length * self.spatial_merge_size**2 * patch**2


class PixelReferLiteConfig(PixelReferBaseConfig):
    """PixelRefer-Lite: object tokens only (SAOT + OCI), 32 per mask.

    `reuse_first_local_crop` (parity switch, default False = corrected): when several masks share a frame,
    the official code gives all of them the first mask's 224x224 local crop (a bug, Lite reference §8.3).
    """

    model_type = "pixelreferlite_qwen2"

    reuse_first_local_crop: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.mm_hidden_size % 8 != 0:
            raise ValueError(
                f"PixelReferLiteConfig: mm_hidden_size ({self.mm_hidden_size}) must be divisible by the 8 heads "
                "of the region encoder's fusion attention"
            )


class PixelReferConfig(PixelReferBaseConfig):
    """PixelRefer (full): the image or video goes to the LLM as `<image>` tokens beside 0..32 object
    tokens per mask.

    Switches (full reference §8):
    - `crop_budget`: "per_request" (released inference: each object crop gets 1,605,632 // N pixels, N the
      request's masks, §8.6) or "per_crop" (training-like: the full budget per crop; changes outputs).
    - `timestamp_rounding`: how `Time t s:` renders t (§8.9). "numpy" (default): as the official video
      loader's np.float64 timestamps (numpy rounding, 0.15 -> 0.2); "python": Python float rounding
      (0.15 -> 0.1), as in training. Integer seconds render the same either way.
    - `compression_threshold`: video token compression keeps a merged token when the mean absolute pixel
      difference to the previous frame, times 255, exceeds it (0.1, §2.5).
    """

    model_type = "pixelrefer_qwen2"

    crop_budget: str = "per_request"
    timestamp_rounding: str = "numpy"
    compression_threshold: float = 0.1

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.crop_budget not in CROP_BUDGETS:
            raise ValueError(
                f"PixelReferConfig: crop_budget {self.crop_budget!r} is not one of {CROP_BUDGETS}"
            )
        if self.timestamp_rounding not in TIMESTAMP_ROUNDINGS:
            raise ValueError(
                f"PixelReferConfig: timestamp_rounding {self.timestamp_rounding!r} is not one of "
                f"{TIMESTAMP_ROUNDINGS}"
            )
