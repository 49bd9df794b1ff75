"""The full model's prompt layout and timestamp rendering, written out by hand (full reference §5)."""

from __future__ import annotations

import numpy as np
import pytest

from pixelrefer_core.errors import PromptError
from pixelrefer_core.model.prompting import build_full_prompt, format_timestamp

HEAD, TAIL = "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"
I3 = "<image>" * 3


def test_image_prompt_layout():
    text = build_full_prompt("What is <region>?", [2], tokens_per_frame=3)
    assert text == f"{HEAD}{I3}\nWhat is [<REGION><REGION>]?{TAIL}"


def test_video_prompt_lists_every_frame_with_its_time():
    text = build_full_prompt(
        "Compare <region> and <region>.", [1, 0], tokens_per_frame=3, timestamps=[0.0, 1.5]
    )
    assert text == f"{HEAD}Time 0.0s:{I3},Time 1.5s:{I3}\nCompare [<REGION>] and [].{TAIL}"  # 0 tokens: []


@pytest.mark.parametrize(
    "question", ["<video>\nDescribe <region>.", "<video>Describe <region>.", "Describe <region>."]
)
def test_modal_tag_is_stripped_or_prepended(question):
    text = build_full_prompt(question, [1], tokens_per_frame=3, timestamps=[2.0])
    assert text == f"{HEAD}Time 2.0s:{I3}\nDescribe [<REGION>].{TAIL}"


def test_text_before_the_tag_comes_right_before_the_frames():
    text = build_full_prompt(
        "Watch: <video> Then describe <region>.", [1], tokens_per_frame=3, timestamps=[0]
    )
    assert text == f"{HEAD}Watch:Time 0.0s:{I3}\nThen describe [<REGION>].{TAIL}"
    image = build_full_prompt("Look <image>", [], tokens_per_frame=3)
    assert image == f"{HEAD}Look{I3}\n{TAIL}"


@pytest.mark.parametrize(
    ("question", "counts", "video", "needle"),
    [
        ("<region> and <region>", [1], False, r"2 <region> placeholder\(s\) but 1 mask"),
        ("<video> and <video> <region>", [1], True, "2 '<video>' tags"),
        ("<image> <region>", [1], True, "holds '<image>' but the input is a video"),
        ("<video> <region>", [1], False, "holds '<video>' but the input is an image"),
    ],
)
def test_bad_prompts_say_what_is_wrong(question, counts, video, needle):
    with pytest.raises(PromptError, match=needle):
        build_full_prompt(question, counts, tokens_per_frame=3, timestamps=[0.0] if video else None)


@pytest.mark.parametrize(
    ("t", "numpy", "python"),
    [
        (0.15, "0.2", "0.1"),
        (0.35, "0.4", "0.3"),
        (0.45, "0.4", "0.5"),
        (1.05, "1.0", "1.1"),
        (0.25, "0.2", "0.2"),
        (0.75, "0.8", "0.8"),
        (3, "3.0", "3.0"),
        (12.0, "12.0", "12.0"),
    ],
)
def test_timestamps_render_like_the_official_numpy_or_python_values(t, numpy, python):
    assert format_timestamp(t, "numpy") == numpy == format_timestamp(np.float64(t), "numpy")
    assert format_timestamp(t, "python") == python
    with pytest.raises(ValueError, match="rounding"):
        format_timestamp(t, "bankers")


def test_rounding_switch_reaches_the_prompt():
    numpy = build_full_prompt("<region>", [0], tokens_per_frame=1, timestamps=[0.15])
    python = build_full_prompt("<region>", [0], tokens_per_frame=1, timestamps=[0.15], rounding="python")
    assert "Time 0.2s:" in numpy and "Time 0.1s:" in python
