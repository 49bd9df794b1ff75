"""The model's input error, `pixelrefer_core.errors.InputError` (a request the model cannot take: bad masks,
frames, timestamps), under the model folder's name. It lives in the core's error hierarchy so that code which
must not import torch (the flows' failure policy) can name it. Prompt problems stay `PromptError`."""

from __future__ import annotations

from pixelrefer_core.errors import InputError

__all__ = ["InputError"]
