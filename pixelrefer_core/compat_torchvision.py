"""Make `torchvision` importable on CPU-only torch when its compiled ops cannot load.

The PyPI torchvision 0.28 wheel is built against CUDA torch: with the CPU torch its `_C` extension fails
to load and `import torchvision` dies with "operator torchvision::nms does not exist". SAM 2's automatic
mask generator only needs `nms` / `batched_nms` (and transforms) from it, so before torchvision is first
imported we register `torchvision::nms` and `torchvision::qnms` with a pure-torch kernel through
`torch.library`, and tell torchvision its extension is available.

Where torchvision's own `_C` loads (GPU machines, matching builds) `ensure_torchvision()` does nothing
beyond importing it. Call it before importing anything that imports torchvision.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import sys

import torch

log = logging.getLogger(__name__)

_LIB: torch.library.Library | None = None
_MODE: str | None = None  # 'native' | 'fallback'


def nms_reference(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS: indices (int64, by decreasing score) of boxes (x0, y0, x1, y1) kept.

    A box is dropped when its IoU with a higher-scoring kept box exceeds `iou_threshold`.
    """
    if dets.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=dets.device)
    dets = dets.float()
    order = torch.argsort(scores.float(), descending=True, stable=True)
    boxes = dets[order]
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    union = area[:, None] + area[None, :] - inter
    iou = torch.where(union > 0, inter / union, torch.zeros_like(inter))
    over = (iou > iou_threshold).cpu()
    n = boxes.shape[0]
    suppressed = torch.zeros(n, dtype=torch.bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= over[i]
    return order[torch.tensor(keep, dtype=torch.int64, device=order.device)]


def _qnms(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    return nms_reference(dets.dequantize(), scores.dequantize(), iou_threshold)


def _native_ops_load() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for lib in glob.glob(os.path.join(folder, "_C*.so")) + glob.glob(os.path.join(folder, "_C*.pyd")):
            try:
                torch.ops.load_library(lib)
                return True
            except (OSError, RuntimeError) as exc:
                log.debug("torchvision's own ops do not load (%s): using the pure-torch fallback", exc)
    return False


def _op_exists(name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False


def ensure_torchvision() -> str:
    """Make `import torchvision` work; returns 'native' (its own ops) or 'fallback' (ours)."""
    global _LIB, _MODE
    if _MODE is not None:
        return _MODE
    if "torchvision" not in sys.modules and not _op_exists("nms") and not _native_ops_load():
        _LIB = torch.library.Library("torchvision", "DEF")
        _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIB.impl("nms", nms_reference, "CompositeExplicitAutograd")
        _LIB.impl("qnms", _qnms, "CompositeExplicitAutograd")
        import torchvision.extension as tv_ext

        tv_ext._has_ops = lambda: True  # our kernels stand in for the missing extension
        _MODE = "fallback"
        log.info("torchvision ops nms/qnms registered with a pure-torch CPU kernel")
    else:
        _MODE = "native"
    import torchvision  # noqa: F401

    return _MODE


__all__ = ["ensure_torchvision", "nms_reference"]
