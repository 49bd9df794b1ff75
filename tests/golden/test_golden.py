"""The tiny models' outputs equal the golden files written by `regenerate.py` (fp32, CPU).

These are the only model tests whose references are not computed by the code under test: a numeric
change anywhere in the vision encoder (e.g. RoPE), SAOT, OCI, k-means, the region encoder, the LLM glue or
greedy decoding makes one of them fail. If the change is intended, regenerate on purpose (see
regenerate.py) and explain why in the commit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pixelrefer_core.model.tiny import build_tiny_model

from .cases import LITE_FILE, lite_outputs

# fp32 on CPU: summation order differs a little between thread counts and BLAS builds.
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def lite_golden():
    with np.load(LITE_FILE) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def lite_now(lite_golden):
    model, tokenizer = build_tiny_model(seed=0)
    inputs = {
        k: lite_golden[k]
        for k in ("vision_pixel_values", "vision_grid_thw", "frames", "masks", "mask_frame_ids")
    }
    return lite_outputs(model, tokenizer, inputs)


def test_golden_file_says_why_it_was_written(lite_golden):
    meta = json.loads(str(lite_golden["meta"]))
    assert meta["why"] and meta["model"].startswith("pixelrefer_core.model.tiny")


@pytest.mark.parametrize("name", ["vision_features", "object_tokens", "video_first_logits"])
def test_lite_tensors_equal_golden(lite_golden, lite_now, name):
    want = torch.from_numpy(lite_golden[name])
    got = torch.from_numpy(lite_now[name])
    assert got.shape == want.shape
    scale = float(want.abs().max())
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL * max(scale, 1.0))


@pytest.mark.parametrize("case", ["video", "image", "pair"])
def test_lite_greedy_ids_equal_golden(lite_golden, lite_now, case):
    want = lite_golden[f"greedy_ids_{case}"].tolist()
    assert len(want) > 0  # a golden answer that is empty would guard nothing
    assert lite_now[f"greedy_ids_{case}"].tolist() == want
