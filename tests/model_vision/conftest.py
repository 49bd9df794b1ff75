"""Fixtures for the object-tokenizer tests: tiny random vision encoder and region encoder, synthetic frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelrefer_core.model.configuration_vision import PixelReferVisionConfig
from pixelrefer_core.model.modeling_vision import PixelReferVisionEncoder
from pixelrefer_core.model.region_encoder import PixelReferLiteRegionEncoder

TINY_VISION = dict(hidden_size=32, num_attention_heads=2, num_hidden_layers=2, intermediate_size=64)


@pytest.fixture
def tiny_config() -> PixelReferVisionConfig:
    return PixelReferVisionConfig(**TINY_VISION)


@pytest.fixture
def tiny_encoder(tiny_config) -> PixelReferVisionEncoder:
    torch.manual_seed(0)
    return PixelReferVisionEncoder(tiny_config).eval()


@pytest.fixture
def tiny_region_encoder() -> PixelReferLiteRegionEncoder:
    torch.manual_seed(1)
    return PixelReferLiteRegionEncoder(32, 48, num_heads=8, mask_num=32).eval()


def random_frames(n: int, h: int = 96, w: int = 128, seed: int = 0) -> list[np.ndarray]:
    """Smooth-ish random RGB frames (uint8 HxWx3)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def box_mask(h: int, w: int, top: int, left: int, bottom_excl: int, right_excl: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[top:bottom_excl, left:right_excl] = True
    return m
