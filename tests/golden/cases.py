"""The fixed inputs of the golden outputs and the code that computes the outputs from them.

Shared by `regenerate.py` (writes the golden files, on purpose only) and `test_golden.py` (compares).
Inputs are drawn once by `make_inputs` and stored in the golden file, so the comparison does not depend
on numpy's random streams staying the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
LITE_FILE = HERE / "pixelrefer_lite_tiny.npz"

VISION_GRIDS = [(1, 2, 3), (1, 3, 2), (1, 1, 4)]
MAX_NEW_TOKENS = 16
VIDEO_QUESTION = (
    "There is one object in the video: <region>.\nPlease describe in detail the marked object in the video."
)
IMAGE_QUESTION = "What is the category of <region>? Using only one word or phrase."
PAIR_QUESTION = (
    "There is 2 objects in the video: <object0><region>, <object1><region>. What is <object0> doing?"
)


def make_inputs() -> dict[str, np.ndarray]:
    """Pixel rows for the vision encoder, two frames and three masks (every mask has more than 32 valid
    cells, so k-means runs; one small object; two masks on frame 0, so the per-mask local crops differ)."""
    rng = np.random.default_rng(20261201)
    pix = rng.standard_normal((sum(t * h * w for t, h, w in VISION_GRIDS), 588)).astype(np.float32)
    # Smooth frames (upsampled coarse noise): neighbouring grid cells have similar features, so k-means
    # takes several iterations to converge (on i.i.d. noise it converges in two, and would not notice
    # an iteration-count change).
    coarse = rng.integers(0, 256, (2, 6, 8, 3)).astype(np.float64)
    frames = np.stack([cv2.resize(c, (128, 96), interpolation=cv2.INTER_CUBIC) for c in coarse])
    frames = np.clip(frames + rng.normal(0, 4, frames.shape), 0, 255).astype(np.uint8)
    masks = np.zeros((3, 96, 128), dtype=bool)
    masks[0, 20:80, 10:110] = True  # 6000 px: scale 2, ~130 grid cells, k-means needs all 3 iterations
    masks[1, 70:76, 100:108] = True
    yy, xx = np.mgrid[:96, :128]
    masks[2] = (yy - 48) ** 2 + (xx - 80) ** 2 <= 20**2
    return {
        "vision_pixel_values": pix,
        "vision_grid_thw": np.asarray(VISION_GRIDS, dtype=np.int64),
        "frames": frames,
        "masks": masks,
        "mask_frame_ids": np.asarray([0, 0, 1], dtype=np.int64),
    }


def lite_outputs(model: Any, tokenizer: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Everything the golden file pins for PixelRefer-Lite, computed through the public API."""
    from pixelrefer_core.inference import describe_one
    from pixelrefer_core.inference.generation import encode_prompt

    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        vision = model.model.vision_encoder(
            torch.from_numpy(inputs["vision_pixel_values"]), torch.from_numpy(inputs["vision_grid_thw"])
        )
    out["vision_features"] = vision.float().numpy()
    frames = list(inputs["frames"])
    masks = inputs["masks"]
    ids = [int(i) for i in inputs["mask_frame_ids"]]
    tokens = model.object_tokens(frames, masks, ids, generator=torch.Generator().manual_seed(0))
    out["object_tokens"] = tokens.float().numpy()

    video_ids = encode_prompt(tokenizer, VIDEO_QUESTION, [0, 1], 32, timestamps=[0.0, 0.5])
    video_tokens = model.object_tokens(
        frames, masks[[0, 2]], [0, 1], generator=torch.Generator().manual_seed(0)
    )
    embeds = model.embed_with_object_tokens(video_ids, video_tokens)
    with torch.no_grad():
        logits = model(inputs_embeds=embeds[None]).logits[0, -1]
    out["video_first_logits"] = logits.float().numpy()

    cases = {
        "video": dict(
            frames=frames,
            masks=masks[[0, 2]],
            mask_frame_ids=[0, 1],
            question=VIDEO_QUESTION,
            timestamps=[0.0, 0.5],
        ),
        "image": dict(frames=frames[:1], masks=masks[:1], mask_frame_ids=[0], question=IMAGE_QUESTION),
        "pair": dict(
            frames=frames,
            masks=masks[[0, 2]],
            mask_frame_ids=[0, 1],
            question=PAIR_QUESTION,
            timestamps=[0.0, 0.5],
            object_frame_ids=[[0], [1]],
        ),
    }
    for name, case in cases.items():
        new_ids, _ = describe_one(model, tokenizer, max_new_tokens=MAX_NEW_TOKENS, **case)
        out[f"greedy_ids_{name}"] = np.asarray(new_ids, dtype=np.int64)
    return out
