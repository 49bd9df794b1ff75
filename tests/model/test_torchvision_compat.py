"""The torchvision shim of pixelrefer_core.model: transformers' modeling code imports, nms is right."""

from __future__ import annotations

import torch

from pixelrefer_core.model import _nms_reference


def test_transformers_modeling_imports_with_torchvision_installed():
    import torchvision  # noqa: F401  (fails on CPU torch without the shim or a working extension)
    from transformers import Qwen2ForCausalLM

    assert Qwen2ForCausalLM.__name__ == "Qwen2ForCausalLM"


def test_reference_nms_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor(
        [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=torch.float32
    )
    scores = torch.tensor([0.5, 0.9, 0.8, 0.1])
    assert _nms_reference(boxes, scores, 0.5).tolist() == [1, 2]
    assert _nms_reference(boxes, scores, 0.99).tolist() == [1, 2, 0, 3]
    # the op torchvision calls resolves to a kernel (the real one or ours) and agrees
    assert torch.ops.torchvision.nms(boxes, scores, 0.5).tolist() == [1, 2]
