"""PixelRefer-Lite's forward / generate take region inputs (they used to be ignored by generate(**inputs))."""

from __future__ import annotations

import torch

from pixelrefer_core.inference import describe_one
from pixelrefer_core.model import PixelReferLiteProcessor

from .conftest import scene

QUESTION = "There is one object in the video: <region>.\nWhat is it?"


def test_region_inputs_reach_the_llm_in_forward_and_generate(tiny_model):
    model, tok = tiny_model
    frames, masks = scene(2)
    processor = PixelReferLiteProcessor(tok, model.config)
    a = processor(frames[:1], masks[:1], [0], QUESTION, timestamps=[0.0])
    b = processor(frames[1:], masks[1:], [0], QUESTION, timestamps=[0.0])
    assert set(a) == {"input_ids", "attention_mask", "region_inputs"}
    with torch.no_grad():
        out_a, out_b = model(**a), model(**b)
        plain = model(input_ids=a["input_ids"])  # the same ids without object tokens
    assert out_a.object_tokens.shape == (32, model.config.hidden_size)
    assert not torch.allclose(out_a.logits[0, -1], out_b.logits[0, -1])
    assert not torch.allclose(out_a.logits[0, -1], plain.logits[0, -1])
    ids_a = model.generate(**a, max_new_tokens=8, do_sample=False, repetition_penalty=1.1)[0].tolist()
    one, _ = describe_one(
        model, tok, frames[:1], masks[:1], [0], QUESTION, timestamps=[0.0], max_new_tokens=8
    )
    assert ids_a[: len(one)] == one
    ids_plain = model.generate(a["input_ids"], max_new_tokens=8, do_sample=False)[0].tolist()
    assert (
        ids_plain[: a["input_ids"].shape[1]] == a["input_ids"][0].tolist()
    )  # plain Qwen2 generate still works
