"""Fixed inputs and outputs of the full PixelRefer's golden file (see cases.py for the Lite one).

The full model's golden outputs guard our implementation against unintended numeric change (they were
computed by this code, checked against the hand-computed tests of tests/model*, not by the official code,
which needs CUDA and flash-attn).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
FULL_FILE = HERE / "pixelrefer_tiny.npz"

MAX_NEW_TOKENS = 12
TIMESTAMPS = [0.0, 0.5, 1.0]
VIDEO_QUESTION = (
    "<video>\nThere is 2 objects in the video: <object0><region>, <object1><region>. Describe <object0>."
)
IMAGE_QUESTION = "What is the category of <region>? Using only one word or phrase."
SCENE_QUESTION = "What happens in the video?"


def make_full_inputs() -> dict[str, np.ndarray]:
    """Three smooth 84 x 112 video frames (the third a copy of the second, so compression drops tokens), one
    annotated frame of another size, two masks on it (one large enough for k-means)."""
    rng = np.random.default_rng(20261202)
    coarse = rng.integers(0, 256, (3, 4, 5, 3)).astype(np.float64)
    frames = np.stack([cv2.resize(c, (112, 84), interpolation=cv2.INTER_CUBIC) for c in coarse])
    frames = np.clip(frames + rng.normal(0, 4, frames.shape), 0, 255).astype(np.uint8)
    frames[2] = frames[1]
    # smooth, so k-means on mask 0 needs all 5 iterations (on i.i.d. noise it converges in two or three)
    coarse_annotated = rng.integers(0, 256, (6, 8, 3)).astype(np.float64)
    annotated = cv2.resize(coarse_annotated, (128, 96), interpolation=cv2.INTER_CUBIC)[None]
    annotated = np.clip(annotated + rng.normal(0, 4, annotated.shape), 0, 255).astype(np.uint8)
    masks = np.zeros((2, 96, 128), dtype=bool)
    masks[0, 20:80, 10:110] = True  # 6000 px: scale 2, ~130 cells: k-means runs all 5 iterations
    yy, xx = np.mgrid[:96, :128]
    masks[1] = (yy - 60) ** 2 + (xx - 90) ** 2 <= 9**2
    return {"video_frames": frames, "annotated_frames": annotated, "masks": masks}


def full_outputs(model: Any, tokenizer: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Everything the full golden file pins, computed through the public API."""
    from pixelrefer_core.inference import describe_one
    from pixelrefer_core.model import PixelReferProcessor

    frames = list(inputs["video_frames"])
    annotated = list(inputs["annotated_frames"])
    masks = inputs["masks"]
    out: dict[str, np.ndarray] = {}
    out["video_tokens"] = model.visual_tokens(frames, timestamps=TIMESTAMPS).float().numpy()
    out["image_tokens"] = model.visual_tokens(frames[:1]).float().numpy()
    gen = torch.Generator().manual_seed(0)
    out["object_tokens"] = model.object_tokens(annotated, masks, [0, 0], generator=gen).float().numpy()
    inputs_video = PixelReferProcessor(tokenizer, model.config)(
        frames, VIDEO_QUESTION, masks, [0, 0], timestamps=TIMESTAMPS, mask_frames=annotated
    )
    with torch.no_grad():
        out["video_first_logits"] = model(**inputs_video).logits[0, -1].float().numpy()
    cases = {
        "video": dict(
            frames=frames,
            masks=masks,
            mask_frame_ids=[0, 0],
            question=VIDEO_QUESTION,
            timestamps=TIMESTAMPS,
            mask_frames=annotated,
        ),
        "image": dict(frames=annotated, masks=masks[:1], mask_frame_ids=[0], question=IMAGE_QUESTION),
        "scene": dict(
            frames=frames, masks=None, mask_frame_ids=None, question=SCENE_QUESTION, timestamps=TIMESTAMPS
        ),
    }
    for name, case in cases.items():
        new_ids, _ = describe_one(model, tokenizer, max_new_tokens=MAX_NEW_TOKENS, **case)
        out[f"greedy_ids_{name}"] = np.asarray(new_ids, dtype=np.int64)
    return out
