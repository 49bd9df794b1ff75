"""Save -> load round trips in every released layout, and the errors of bad checkpoints."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from pixelrefer_core.errors import ModelLoadError
from pixelrefer_core.model import PixelReferLiteForCausalLM, load_pixelrefer
from pixelrefer_core.model.tiny import build_tiny_model, save_tiny_checkpoint

from .conftest import scene


def outputs(model):
    """Logits of a fixed prompt and object tokens of a fixed scene: what a user gets from the weights."""
    frames, masks = scene(2)
    tokens = model.object_tokens(frames, masks, [0, 1], generator=torch.Generator().manual_seed(0))
    ids = torch.arange(5, 25)[None]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    return tokens, logits


@pytest.fixture(scope="module")
def reference():
    model, _ = build_tiny_model(seed=0)
    return outputs(model)


@pytest.mark.parametrize(
    ("safetensors", "shard", "files"),
    [
        (True, False, {"model.safetensors"}),
        (True, True, {"model.safetensors.index.json"}),
        (False, False, {"pytorch_model.bin"}),
        (False, True, {"pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin"}),
    ],
)
def test_round_trip_in_every_layout_gives_identical_outputs(tmp_path, reference, safetensors, shard, files):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt", seed=0, safetensors=safetensors, shard=shard)
    assert files <= set(os.listdir(ckpt))
    model, tokenizer = load_pixelrefer(ckpt)
    assert model.dtype == torch.float32 and not model.training
    tokens, logits = outputs(model)
    assert torch.equal(tokens, reference[0])
    assert torch.equal(logits, reference[1])
    assert model.config.region_token_index == tokenizer.convert_tokens_to_ids("<REGION>")


def test_tied_checkpoint_has_no_lm_head_and_ties_it(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt", safetensors=False)
    assert "lm_head.weight" not in torch.load(os.path.join(ckpt, "pytorch_model.bin"), weights_only=True)
    model, _ = load_pixelrefer(ckpt)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_untied_checkpoint_keeps_its_own_lm_head(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt", tie_word_embeddings=False)
    saved = load_file(os.path.join(ckpt, "model.safetensors"))
    model, _ = load_pixelrefer(ckpt)
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert torch.equal(model.lm_head.weight, saved["lm_head.weight"])


def test_same_seed_same_weights_other_seed_differs():
    a, _ = build_tiny_model(seed=3)
    b, _ = build_tiny_model(seed=3)
    c, _ = build_tiny_model(seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(
        sa["model.region_encoder.pos_linear.weight"], sc["model.region_encoder.pos_linear.weight"]
    )


def test_missing_path_names_it(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ModelLoadError, match="nope"):
        load_pixelrefer(missing)
    with pytest.raises(ModelLoadError, match="nope"):
        PixelReferLiteForCausalLM.from_pretrained(str(missing))


def _edit_weights(ckpt: str, edit) -> None:
    path = os.path.join(ckpt, "model.safetensors")
    state = load_file(path)
    edit(state)
    save_file(state, path, metadata={"format": "pt"})


def test_key_mismatch_lists_missing_and_unexpected_keys(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")

    def edit(state):
        state.pop("model.region_encoder.pos_linear.weight")
        state["model.region_encoder.extra.weight"] = torch.zeros(2)

    _edit_weights(ckpt, edit)
    with pytest.raises(ModelLoadError) as err:
        load_pixelrefer(ckpt)
    text = str(err.value)
    assert "model.region_encoder.pos_linear.weight" in text and "missing" in text
    assert "model.region_encoder.extra.weight" in text and "unexpected" in text


def test_shape_mismatch_is_a_load_error(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    _edit_weights(ckpt, lambda s: s.__setitem__("model.region_encoder.pos_linear.bias", torch.zeros(7)))
    with pytest.raises(ModelLoadError, match="pos_linear"):
        load_pixelrefer(ckpt)


def test_unused_lite_weights_may_be_absent(tmp_path, reference):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")

    def edit(state):
        for k in [
            k for k in state if k.startswith(("model.mm_projector.", "model.region_encoder.mask_embedding."))
        ]:
            state.pop(k)

    _edit_weights(ckpt, edit)
    model, _ = load_pixelrefer(ckpt)
    tokens, logits = outputs(model)
    assert torch.equal(tokens, reference[0]) and torch.equal(logits, reference[1])


def test_config_written_in_released_form(tiny_dir):
    config = json.load(open(os.path.join(tiny_dir, "config.json")))
    gen = json.load(open(os.path.join(tiny_dir, "generation_config.json")))
    assert config["model_type"] == "pixelreferlite_qwen2"
    assert config["mask_num"] == 32 and config["use_token_compression"] is True
    assert config["region_token_index"] is not None and config["vision_encoder_config"]["hidden_size"] == 32
    assert gen["repetition_penalty"] == 1.1 and gen["do_sample"] is False
    assert len(gen["eos_token_id"]) == 2


def test_dtype_choice_is_honoured_and_fp32_is_the_cpu_default(tiny_dir):
    model, _ = load_pixelrefer(tiny_dir, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    assert model.model.vision_encoder.vision_encoder.post_layernorm.weight.dtype == torch.bfloat16
    frames, masks = scene(1)
    assert model.object_tokens(frames, masks, [0]).dtype == torch.bfloat16
