"""Loading dispatches on the checkpoint's model_type; the full tiny checkpoint round-trips strictly."""

from __future__ import annotations

import json
import os

import pytest
import torch

from pixelrefer_core.errors import ModelLoadError
from pixelrefer_core.model import PixelReferForCausalLM, PixelReferLiteForCausalLM, load_pixelrefer
from pixelrefer_core.model.tiny import build_tiny_model, save_tiny_checkpoint

from .conftest import scene


def full_outputs(model):
    frames, masks = scene(2, h=56, w=84)
    tokens = model.object_tokens(frames, masks, [0, 1], generator=torch.Generator().manual_seed(0))
    visual = model.visual_tokens(frames, timestamps=[0.0, 0.5])
    ids = torch.arange(5, 25)[None]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    return tokens, visual, logits


@pytest.fixture(scope="module")
def full_dir(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("full") / "ckpt", seed=0, model_kind="full")


@pytest.mark.parametrize(("safetensors", "shard"), [(True, False), (False, True)])
def test_full_checkpoint_loads_as_the_full_model_with_identical_outputs(tmp_path, safetensors, shard):
    reference, _ = build_tiny_model(seed=0, model_kind="full")
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt", model_kind="full", safetensors=safetensors, shard=shard)
    model, tokenizer = load_pixelrefer(ckpt)
    assert type(model) is PixelReferForCausalLM and not model.training
    assert json.load(open(os.path.join(ckpt, "config.json")))["model_type"] == "pixelrefer_qwen2"
    assert model.config.image_token_index == tokenizer.convert_tokens_to_ids("<image>")
    assert model.config.region_token_index == tokenizer.convert_tokens_to_ids("<REGION>")
    for got, want in zip(full_outputs(model), full_outputs(reference), strict=True):
        assert torch.equal(got, want)


def test_lite_checkpoint_still_loads_as_lite(tiny_dir):
    model, _ = load_pixelrefer(tiny_dir)
    assert type(model) is PixelReferLiteForCausalLM


def _set_model_type(ckpt: str, model_type: str) -> None:
    path = os.path.join(ckpt, "config.json")
    config = json.load(open(path))
    config["model_type"] = model_type
    json.dump(config, open(path, "w"))


def test_unknown_model_type_names_it_and_the_supported_two(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    _set_model_type(ckpt, "llava")
    with pytest.raises(ModelLoadError) as err:
        load_pixelrefer(ckpt)
    text = str(err.value)
    assert "'llava'" in text and "'pixelrefer_qwen2'" in text and "'pixelreferlite_qwen2'" in text


def test_a_lite_checkpoint_labelled_full_fails_on_its_extra_keys(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")  # Lite weights: OCI modules the full model lacks
    _set_model_type(ckpt, "pixelrefer_qwen2")
    with pytest.raises(ModelLoadError, match="unexpected keys.*fusion_attention"):
        load_pixelrefer(ckpt)


def test_a_full_checkpoint_missing_the_projector_is_refused(full_dir, tmp_path):
    # mm_projector is optional for Lite (unused) but carries the full model's vision tokens.
    import shutil

    from safetensors.torch import load_file, save_file

    ckpt = tmp_path / "ckpt"
    shutil.copytree(full_dir, ckpt)
    state = load_file(ckpt / "model.safetensors")
    state = {k: v for k, v in state.items() if not k.startswith("model.mm_projector.")}
    save_file(state, ckpt / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="missing keys.*mm_projector"):
        load_pixelrefer(ckpt)
