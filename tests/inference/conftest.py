"""Fixtures of the inference tests: the tiny checkpoint loaded through the real loader, and items."""

from __future__ import annotations

import numpy as np
import pytest

from pixelrefer_core.inference import DescribeItem
from pixelrefer_core.model.prompting import DETAILED_VIDEO_CAPTION, IMAGE_CATEGORY
from pixelrefer_core.model.tiny import save_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from pixelrefer_core.model import load_pixelrefer

    return load_pixelrefer(save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0))


def make_item(key, n_frames: int, seed: int, video: bool = True, h: int = 40, w: int = 56) -> DescribeItem:
    """A moving rectangle over random frames; video items carry timestamps and frame keys."""
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n_frames)]
    masks = np.zeros((n_frames, h, w), dtype=bool)
    for i in range(n_frames):
        y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        masks[i, y : y + 12 + seed % 7, x : x + 16] = True
    if not video:
        return DescribeItem(key, frames, masks, list(range(n_frames)), IMAGE_CATEGORY)
    return DescribeItem(
        key,
        frames,
        masks,
        list(range(n_frames)),
        DETAILED_VIDEO_CAPTION,
        timestamps=[0.4 * i for i in range(n_frames)],
        frame_keys=[("video", seed, i) for i in range(n_frames)],
    )
