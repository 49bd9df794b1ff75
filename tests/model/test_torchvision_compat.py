"""Importing pixelrefer_core.model makes transformers' modeling code (which imports torchvision) work."""

from __future__ import annotations

import torch

import pixelrefer_core.model  # noqa: F401  (applies the torchvision compatibility step)


def test_transformers_modeling_imports_with_torchvision_installed():
    import torchvision  # noqa: F401  (fails on CPU torch without the shim or a working extension)
    from transformers import Qwen2ForCausalLM

    assert Qwen2ForCausalLM.__name__ == "Qwen2ForCausalLM"


def test_torchvision_nms_op_resolves_to_a_kernel():
    boxes = torch.tensor(
        [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=torch.float32
    )
    scores = torch.tensor([0.5, 0.9, 0.8, 0.1])
    assert torch.ops.torchvision.nms(boxes, scores, 0.5).tolist() == [1, 2]
