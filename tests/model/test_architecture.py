"""Full-size Lite-2B / Lite-7B built on the meta device: the state_dict matches the released layout (§5.4)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from pixelrefer_core.model import PixelReferLiteConfig, PixelReferLiteForCausalLM

VOCAB = 151669  # [inferred] released vocab after resize_token_embeddings(len(tokenizer))
SIZES = {
    "lite-2b": dict(
        hidden_size=1536, intermediate_size=8960, num_attention_heads=12, num_key_value_heads=2, tie=True
    ),
    "lite-7b": dict(
        hidden_size=3584, intermediate_size=18944, num_attention_heads=28, num_key_value_heads=4, tie=False
    ),
}


def released_config(size: str) -> PixelReferLiteConfig:
    s = SIZES[size]
    return PixelReferLiteConfig(
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


def expected_shapes(d: int, kv: int, inter: int, v: int) -> dict[str, tuple[int, ...]]:
    """The released key list (reference §5.4), written out independently of the model code."""
    c, ci = 1152, 4304
    out = {"model.embed_tokens.weight": (v, d), "model.norm.weight": (d,), "lm_head.weight": (v, d)}
    for i in range(28):
        p = f"model.layers.{i}."
        out.update(
            {
                p + "self_attn.q_proj.weight": (d, d),
                p + "self_attn.q_proj.bias": (d,),
                p + "self_attn.k_proj.weight": (kv, d),
                p + "self_attn.k_proj.bias": (kv,),
                p + "self_attn.v_proj.weight": (kv, d),
                p + "self_attn.v_proj.bias": (kv,),
                p + "self_attn.o_proj.weight": (d, d),
                p + "mlp.gate_proj.weight": (inter, d),
                p + "mlp.up_proj.weight": (inter, d),
                p + "mlp.down_proj.weight": (d, inter),
                p + "input_layernorm.weight": (d,),
                p + "post_attention_layernorm.weight": (d,),
            }
        )
    ve = "model.vision_encoder.vision_encoder."
    out[ve + "embeddings.patch_embedding.weight"] = (c, 3, 14, 14)
    out[ve + "embeddings.patch_embedding.bias"] = (c,)
    for i in range(27):
        p = f"{ve}encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out[f"{p}self_attn.{proj}.weight"] = (c, c)
            out[f"{p}self_attn.{proj}.bias"] = (c,)
        for ln in ("layer_norm1", "layer_norm2"):
            out[f"{p}{ln}.weight"] = (c,)
            out[f"{p}{ln}.bias"] = (c,)
        out[p + "mlp.fc1.weight"], out[p + "mlp.fc1.bias"] = (ci, c), (ci,)
        out[p + "mlp.fc2.weight"], out[p + "mlp.fc2.bias"] = (c, ci), (c,)
    out[ve + "post_layernorm.weight"] = (c,)
    out[ve + "post_layernorm.bias"] = (c,)
    out["model.mm_projector.readout.0.weight"] = (d, c)
    out["model.mm_projector.readout.0.bias"] = (d,)
    out["model.mm_projector.readout.2.weight"] = (d, d)
    out["model.mm_projector.readout.2.bias"] = (d,)
    re_ = "model.region_encoder."
    out[re_ + "feat_linear.0.weight"], out[re_ + "feat_linear.0.bias"] = (d, c), (d,)
    out[re_ + "feat_linear.2.weight"], out[re_ + "feat_linear.2.bias"] = (d, d), (d,)
    out[re_ + "pos_linear.weight"], out[re_ + "pos_linear.bias"] = (c, 2), (c,)
    for name in ("fusion_attention_local", "fusion_attention_global"):
        out[f"{re_}{name}.in_proj_weight"] = (3 * c, c)
        out[f"{re_}{name}.in_proj_bias"] = (3 * c,)
        out[f"{re_}{name}.out_proj.weight"] = (c, c)
        out[f"{re_}{name}.out_proj.bias"] = (c,)
    for ln in ("ln_local", "ln_global"):
        out[f"{re_}{ln}.weight"], out[f"{re_}{ln}.bias"] = (c,), (c,)
    out[re_ + "mask_embedding.weight"], out[re_ + "mask_embedding.bias"] = (c, 1, 1, 1), (c,)
    return out


@pytest.mark.parametrize("size", ["lite-2b", "lite-7b"])
def test_full_size_state_dict_matches_released_layout(size):
    config = released_config(size)
    with torch.device("meta"):
        model = PixelReferLiteForCausalLM(config)
    s = SIZES[size]
    head_dim = s["hidden_size"] // s["num_attention_heads"]
    want = expected_shapes(
        s["hidden_size"], s["num_key_value_heads"] * head_dim, s["intermediate_size"], VOCAB
    )
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(got) - set(want)) == []
    assert sorted(set(want) - set(got)) == []
    assert {k: got[k] for k in want} == want
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    assert tied == s["tie"]


def test_auto_classes_resolve_our_model_type():
    config = AutoConfig.for_model(
        "pixelreferlite_qwen2",
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
    assert isinstance(config, PixelReferLiteConfig)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert isinstance(model, PixelReferLiteForCausalLM)


def test_config_defaults_are_the_released_ones():
    config = PixelReferLiteConfig()
    assert config.model_type == "pixelreferlite_qwen2"
    assert (config.mm_hidden_size, config.mask_num, config.mm_max_length, config.spatial_merge_size) == (
        1152,
        32,
        8192,
        2,
    )
    assert config.use_token_compression is True
    assert config.vision_config.num_hidden_layers == 27
    assert (config.reuse_first_local_crop, config.round_pixels_to_bf16) == (False, False)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        (dict(mask_num=0), "mask_num"),
        (dict(mm_hidden_size=1024), "mm_hidden_size (1024)"),
        (dict(use_token_compression=False), "use_token_compression"),
    ],
)
def test_config_rejects_inconsistent_fields(fields, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        PixelReferLiteConfig(**fields)


def test_unknown_vision_attention_implementation_is_refused():
    from pixelrefer_core.model.tiny import tiny_config

    config = tiny_config(64, 60, 61, mm_attn_implementation="xformers")
    with pytest.raises(ValueError, match="'xformers'"), torch.device("meta"):
        PixelReferLiteForCausalLM(config)
