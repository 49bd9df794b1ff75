"""Exact prompt strings (reference §4, §8.8, §9) and the tiny tokenizer."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from pixelrefer_core.errors import PromptError
from pixelrefer_core.model.prompting import build_prompt, multi_object_question, render_question
from pixelrefer_core.model.tiny import SPECIAL_TOKENS, tiny_tokenizer

R32 = "<REGION>" * 32


def test_image_form_one_bracket_of_32_region_tokens_per_object():
    text = build_prompt("What is the category of <region>? Using only one word or phrase.", [0], 32)
    assert text == (
        "<|im_start|>user\nWhat is the category of "
        f"[{R32}]? Using only one word or phrase.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_video_form_lists_each_frame_time_rounded_to_one_decimal():
    q = "There is one object in the video: <region>.\nPlease describe in detail the marked object in the video."
    text = render_question(q, [0, 1, 2], 32, timestamps=[0, 2.46, 10.04])
    assert text == (
        f"There is one object in the video: [Time 0.0:{R32},Time 2.5:{R32},Time 10.0:{R32}].\n"
        "Please describe in detail the marked object in the video."
    )


def test_several_objects_fill_placeholders_in_order():
    q = "Compare <region> and <region>."
    text = render_question(q, [0, 1, 1], 2, object_frame_ids=[[0], [1, 1]], timestamps=[1.25, 3.0])
    r2 = "<REGION>" * 2
    assert text == f"Compare [Time 1.2:{r2}] and [Time 3.0:{r2},Time 3.0:{r2}]."
    # image form without grouping: one object per mask
    assert render_question("<region> vs <region>", [0, 0], 1) == "[<REGION>] vs [<REGION>]"


def test_placeholder_count_mismatch_names_both_counts():
    with pytest.raises(PromptError, match=r"2 <region> placeholder\(s\) but 1 object"):
        render_question("<region> and <region>", [0, 1], 32, timestamps=[0.0, 1.0])


@pytest.mark.parametrize("token", ["<image>", "<video>"])
def test_frame_tokens_are_refused_in_lite_questions(token):
    with pytest.raises(PromptError, match=token):
        render_question(f"{token}\nDescribe <region>.", [0], 32)


def test_object_frame_ids_must_list_the_masks_in_order():
    with pytest.raises(PromptError, match="object by object"):
        render_question("<region> <region>", [0, 1], 32, object_frame_ids=[[1], [0]])


def test_multi_object_phrasing_of_the_official_demo():
    two = multi_object_question("What is <object0> doing to <object1>?", 2)
    assert two == (
        "There is 2 objects in the video: <object0><region>, <object1><region>. What is <object0> doing to <object1>?"
    )
    one = multi_object_question("Describe <object0>.", 1, modality="image")
    assert one == "There is 1 object in the image: <object0> <region>. Describe <object0>."
    with pytest.raises(PromptError, match="<object2>"):
        multi_object_question("Is <object2> here?", 2)


def test_tiny_tokenizer_has_released_special_tokens_and_round_trips(tmp_path):
    tok = tiny_tokenizer()
    tok.save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    ids = [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    assert len(set(ids)) == len(SPECIAL_TOKENS) and all(i is not None for i in ids)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    text = "Ünïcode, digits 123 and emoji 🚗 — round trip!"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    prompt = build_prompt("Describe <region>.", [0], 32)
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids.count(tok.convert_tokens_to_ids("<REGION>")) == 32
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
