"""Fixtures of the model tests: one tiny checkpoint per session, in the released layout."""

from __future__ import annotations

import numpy as np
import pytest

from pixelrefer_core.model.tiny import save_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_dir):
    from pixelrefer_core.model import load_pixelrefer

    return load_pixelrefer(tiny_dir)


def scene(n_frames: int = 2, h: int = 48, w: int = 64, seed: int = 0):
    """Random frames and one rectangular mask per frame (the object drifts right)."""
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n_frames)]
    masks = np.zeros((n_frames, h, w), dtype=bool)
    for i in range(n_frames):
        masks[i, 10:30, 8 + 4 * i : 36 + 4 * i] = True
    return frames, masks
