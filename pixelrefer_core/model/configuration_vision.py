"""Configuration of the PixelRefer-Lite vision encoder (VL3-SigLIP-NaViT, "DAMOVL" in the official code).

No torch import here: a configuration must be readable without building the model.
The released checkpoints were trained with the values in `RELEASED_VISION_CONFIG`; use them when a
checkpoint's `config.json` carries no `vision_encoder_config`.
"""

from __future__ import annotations

from transformers import PretrainedConfig

__all__ = ["PixelReferVisionConfig", "RELEASED_VISION_CONFIG", "VISION_MODEL_TYPE"]

VISION_MODEL_TYPE = "damovl_encoder"

# VL3-SigLIP-NaViT as used by PixelRefer(-Lite) 2B and 7B (reference doc section 2.3).
RELEASED_VISION_CONFIG: dict = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_attention_heads": 16,
    "num_hidden_layers": 27,
    "patch_size": 14,
    "num_channels": 3,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
    "attention_dropout": 0.0,
}


class PixelReferVisionConfig(PretrainedConfig):
    """SigLIP-NaViT vision tower with 2-D rotary position embeddings and no absolute positions.

    Fields (defaults = the released encoder):
        hidden_size: width of the token stream (1152).
        intermediate_size: MLP width (4304).
        num_attention_heads: heads; head_dim = hidden_size // num_attention_heads (72).
        num_hidden_layers: pre-LN transformer layers (27); all are run, the output is post-LayerNormed.
        patch_size: square patch side in pixels (14); input rows hold num_channels * patch_size**2 values.
        num_channels: image channels (3, RGB).
        hidden_act: MLP activation ("gelu_pytorch_tanh").
        layer_norm_eps: LayerNorm epsilon (1e-6).
        attention_dropout: kept for config compatibility; inference uses 0.
        rope_theta: base of the 2-D rotary embedding (10000).
    """

    model_type = VISION_MODEL_TYPE
    base_config_key = "vision_encoder_config"

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_attention_heads: int = 16
    num_hidden_layers: int = 27
    patch_size: int = 14
    num_channels: int = 3
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-6
    attention_dropout: float = 0.0
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads
