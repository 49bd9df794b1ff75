"""The tiny full PixelRefer's outputs equal the golden file written by `regenerate.py` (fp32, CPU).

A numeric change in the video path (merge-grouped rows, 2x2 downsampling, compression), the full
object-token path (crop, uint8 grid mask, 5-iteration k-means, variable counts), the prompt layout or
greedy decoding makes one of these fail. Regenerate on purpose only (see regenerate.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pixelrefer_core.model.tiny import build_tiny_model

from .cases_full import FULL_FILE, full_outputs

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def full_golden():
    with np.load(FULL_FILE) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def full_now(full_golden):
    model, tokenizer = build_tiny_model(seed=0, model_kind="full")
    inputs = {k: full_golden[k] for k in ("video_frames", "annotated_frames", "masks")}
    return full_outputs(model, tokenizer, inputs)


def test_golden_file_says_why_it_was_written(full_golden):
    meta = json.loads(str(full_golden["meta"]))
    assert meta["why"] and "model_kind='full'" in meta["model"]


@pytest.mark.parametrize("name", ["video_tokens", "image_tokens", "object_tokens", "video_first_logits"])
def test_full_tensors_equal_golden(full_golden, full_now, name):
    want = torch.from_numpy(full_golden[name])
    got = torch.from_numpy(full_now[name])
    assert got.shape == want.shape
    scale = float(want.abs().max())
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL * max(scale, 1.0))


@pytest.mark.parametrize("case", ["video", "image", "scene"])
def test_full_greedy_ids_equal_golden(full_golden, full_now, case):
    want = full_golden[f"greedy_ids_{case}"].tolist()
    assert len(want) > 0
    assert full_now[f"greedy_ids_{case}"].tolist() == want
