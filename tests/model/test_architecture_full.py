"""Full PixelRefer-2B / -7B built on the meta device: the state_dict matches the released layout (full
reference §7.1: 785 keys, no OCI / mask_embedding), and the Auto classes dispatch on model_type."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from pixelrefer_core.model import PixelReferConfig, PixelReferForCausalLM, PixelReferLiteConfig

from .test_architecture import SIZES, VOCAB, expected_shapes

LITE_ONLY = ("fusion_attention_local", "fusion_attention_global", "ln_local", "ln_global", "mask_embedding")


# Same LLM sizes as Lite-2B / -7B (Qwen2.5-1.5B / -7B-Instruct).
LLM_SIZE = {"2b": "lite-2b", "7b": "lite-7b"}


def released_full_config(size: str) -> PixelReferConfig:
    s = SIZES[LLM_SIZE[size]]
    return PixelReferConfig(
        vocab_size=VOCAB,
        hidden_size=s["hidden_size"],
        intermediate_size=s["intermediate_size"],
        num_hidden_layers=28,
        num_attention_heads=s["num_attention_heads"],
        num_key_value_heads=s["num_key_value_heads"],
        tie_word_embeddings=s["tie"],
        rope_theta=1e6,
        region_token_index=151668,
        image_token_index=151665,
    )


@pytest.mark.parametrize(("size", "unique_params"), [("2b", 1_963_718_768), ("7b", 8_058_898_032)])
def test_full_size_state_dict_matches_released_layout(size, unique_params):
    config = released_full_config(size)
    with torch.device("meta"):
        model = PixelReferForCausalLM(config)
    s = SIZES[LLM_SIZE[size]]
    # The released key list is Lite's (written out in test_architecture) without the OCI modules.
    head_dim = s["hidden_size"] // s["num_attention_heads"]
    lite = expected_shapes(
        s["hidden_size"], s["num_key_value_heads"] * head_dim, s["intermediate_size"], VOCAB
    )
    want = {k: v for k, v in lite.items() if not any(f"region_encoder.{name}" in k for name in LITE_ONLY)}
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(want) == 785  # reference §7.1
    assert sorted(set(got) - set(want)) == []
    assert sorted(set(want) - set(got)) == []
    assert {k: got[k] for k in want} == want
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == s["tie"]
    assert sum(p.numel() for p in model.parameters()) == unique_params  # reference §7.1 (tied counted once)


def test_auto_classes_dispatch_on_model_type():
    small = dict(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        mm_hidden_size=16,
        vision_encoder_config=dict(
            hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1
        ),
    )
    full = AutoConfig.for_model("pixelrefer_qwen2", **small)
    lite = AutoConfig.for_model("pixelreferlite_qwen2", **small)
    assert type(full) is PixelReferConfig and type(lite) is PixelReferLiteConfig
    with torch.device("meta"):
        assert type(AutoModelForCausalLM.from_config(full)) is PixelReferForCausalLM
        assert type(AutoModelForCausalLM.from_config(lite)).__name__ == "PixelReferLiteForCausalLM"


def test_full_config_defaults_and_switches():
    config = PixelReferConfig()
    assert config.model_type == "pixelrefer_qwen2"
    assert (config.mask_num, config.spatial_merge_size, config.total_max_pixels) == (32, 2, 6_422_528)
    assert (config.crop_budget, config.timestamp_rounding, config.compression_threshold) == (
        "per_request",
        "numpy",
        0.1,
    )
    assert config.vision_config.num_hidden_layers == 27 and config.vision_config.hidden_size == 1152
    with pytest.raises(ValueError, match="crop_budget"):
        PixelReferConfig(crop_budget="everything")
    with pytest.raises(ValueError, match="timestamp_rounding"):
        PixelReferConfig(timestamp_rounding="bankers")
    with pytest.raises(ValueError, match="use_token_compression"):
        PixelReferConfig(use_token_compression=False)
