"""PixelRefer (full, vision-object) and PixelRefer-Lite (object-only): configuration, models, processing,
checkpoint loading, prompts and the tiny test profiles, laid out as a transformers model folder.

    configuration_vision.py / configuration_pixelrefer.py   configs (typed vision sub-config)
    modeling_vision.py                                      the shared SigLIP-NaViT vision encoder
    modeling_pixelrefer.py / modeling_pixelrefer_lite.py    one modeling module per variant
    modeling_common.py, modeling_outputs.py, region_encoder.py, object_tokens.py   shared model parts
    processing_pixelrefer.py, image_processing_pixelrefer.py, crops.py, crops_lite.py, prompting.py
                                                            processing shared by both variants
    loading.py                                              load_pixelrefer (identity and strict key checks:
                                                            pixelrefer_core.checkpoints, importable without torch)
    tiny.py                                                 tiny random checkpoints of both variants

Importing this package registers `pixelrefer_qwen2` and `pixelreferlite_qwen2` with AutoConfig /
AutoModelForCausalLM. It also makes torchvision importable on CPU-only torch
(`pixelrefer_core.compat_torchvision`), because transformers' modeling and image code imports torchvision
and the PyPI wheel's ops do not load there.
"""

from __future__ import annotations

from pixelrefer_core.compat_torchvision import ensure_torchvision

# Before any transformers modeling import (see the module docstring).
ensure_torchvision()

from pixelrefer_core.checkpoints import ResolvedCheckpoint, resolve_checkpoint  # noqa: E402

from .configuration_pixelrefer import PixelReferConfig, PixelReferLiteConfig  # noqa: E402
from .configuration_vision import PixelReferVisionConfig  # noqa: E402
from .errors import InputError  # noqa: E402
from .loading import checkpoint_model_type, load_pixelrefer  # noqa: E402
from .modeling_outputs import (  # noqa: E402
    MultimodalEmbeddings,
    PixelReferCausalLMOutputWithPast,
    RegionFeatures,
    VisualFeatures,
)
from .modeling_pixelrefer import PixelReferForCausalLM, PixelReferModel  # noqa: E402
from .modeling_pixelrefer_lite import PixelReferLiteForCausalLM, PixelReferLiteModel  # noqa: E402
from .processing_pixelrefer import (  # noqa: E402
    PixelReferInputs,
    PixelReferLiteProcessor,
    PixelReferProcessor,
    RegionInputs,
    VisualInputs,
    processor_for,
)
from .prompting import multi_object_question  # noqa: E402

__all__ = [
    "InputError",
    "MultimodalEmbeddings",
    "PixelReferCausalLMOutputWithPast",
    "PixelReferConfig",
    "PixelReferForCausalLM",
    "PixelReferInputs",
    "PixelReferLiteConfig",
    "PixelReferLiteForCausalLM",
    "PixelReferLiteModel",
    "PixelReferLiteProcessor",
    "PixelReferModel",
    "PixelReferProcessor",
    "PixelReferVisionConfig",
    "RegionFeatures",
    "RegionInputs",
    "ResolvedCheckpoint",
    "VisualFeatures",
    "VisualInputs",
    "checkpoint_model_type",
    "load_pixelrefer",
    "multi_object_question",
    "processor_for",
    "resolve_checkpoint",
]
