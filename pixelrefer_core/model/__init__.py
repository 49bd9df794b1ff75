"""PixelRefer-Lite: configuration, model, checkpoint loading, prompts and the tiny test profile.

Importing this package registers `pixelreferlite_qwen2` with AutoConfig / AutoModelForCausalLM.

Importing it also makes torchvision importable on CPU-only torch (`pixelrefer_core.compat_torchvision`),
because transformers' modeling code imports torchvision and the PyPI wheel's ops do not load there.
"""

from __future__ import annotations

from pixelrefer_core.compat_torchvision import ensure_torchvision

# Before any transformers modeling import (see the module docstring).
ensure_torchvision()

from .checkpoints import ResolvedCheckpoint, resolve_checkpoint  # noqa: E402
from .configuration_pixelrefer import PixelReferLiteConfig  # noqa: E402
from .loading import load_pixelrefer  # noqa: E402
from .modeling_pixelrefer import PixelReferLiteForCausalLM, PixelReferLiteModel  # noqa: E402
from .prompting import multi_object_question  # noqa: E402

__all__ = [
    "PixelReferLiteConfig",
    "PixelReferLiteForCausalLM",
    "PixelReferLiteModel",
    "ResolvedCheckpoint",
    "load_pixelrefer",
    "multi_object_question",
    "resolve_checkpoint",
]
