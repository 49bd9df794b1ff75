"""PixelRefer-Lite: configuration, model, checkpoint loading, prompts and the tiny test profile.

Importing this package registers `pixelreferlite_qwen2` with AutoConfig / AutoModelForCausalLM.

torchvision compatibility: on CPU-only torch the PyPI torchvision wheel cannot load its `_C` extension,
so `import torchvision` fails on `torchvision::nms`, and with it every transformers import that reaches
`modeling_utils` (see shared ENVIRONMENT.md). `_ensure_torchvision_importable` (run on import, before
transformers' modeling code) defines the two ops torchvision's import needs, `torchvision::nms` with a
pure-torch kernel and `torchvision::qnms` (raises), only when the real extension does not load and no one
has defined them yet. Where torchvision works (GPU machines) it does nothing.
"""

from __future__ import annotations

import importlib.util
import logging
import sys

_log = logging.getLogger(__name__)


def _nms_reference(dets, scores, iou_threshold: float):
    """Greedy NMS in plain torch: dets [N, 4] (x0, y0, x1, y1), scores [N] -> kept indices, by score."""
    import torch

    order = scores.argsort(descending=True)
    x0, y0, x1, y1 = dets.unbind(1)
    areas = (x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for rank, i in enumerate(order.tolist()):
        if suppressed[rank]:
            continue
        keep.append(i)
        rest = order[rank + 1 :]
        w = (torch.minimum(x1[i], x1[rest]) - torch.maximum(x0[i], x0[rest])).clamp(min=0)
        h = (torch.minimum(y1[i], y1[rest]) - torch.maximum(y0[i], y0[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=1e-12)
        suppressed[rank + 1 :] |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=dets.device)


def _ensure_torchvision_importable() -> bool:
    """Define `torchvision::nms/qnms` when torchvision's own extension cannot load. True if it did."""
    if "torchvision" in sys.modules:
        return False
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    import glob
    import os

    import torch

    try:
        torch.ops.torchvision.nms  # noqa: B018  (already defined: real extension or another shim)
        return False
    except (AttributeError, RuntimeError):
        pass
    for lib_path in glob.glob(os.path.join(spec.submodule_search_locations[0], "_C*.so")):
        try:
            torch.ops.load_library(lib_path)
            return False
        except (OSError, RuntimeError):
            pass
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", _nms_reference, "CPU")

    def _qnms(dets, scores, iou_threshold):
        raise NotImplementedError("quantized nms is unavailable without torchvision's compiled extension")

    lib.impl("qnms", _qnms, "CPU")
    _ensure_torchvision_importable._lib = lib  # keep the registration alive
    _log.debug("torchvision extension unavailable: registered a pure-torch torchvision::nms")
    return True


_ensure_torchvision_importable()

from .configuration_pixelrefer import PixelReferLiteConfig  # noqa: E402
from .loading import load_pixelrefer  # noqa: E402
from .modeling_pixelrefer import PixelReferLiteForCausalLM, PixelReferLiteModel  # noqa: E402

__all__ = ["PixelReferLiteConfig", "PixelReferLiteForCausalLM", "PixelReferLiteModel", "load_pixelrefer"]
