"""The model's input error: a request the model cannot take (bad masks, frames, timestamps).

`InputError` is a `PixelReferError` (the core's hierarchy, `pixelrefer_core.errors`) and a `ValueError`
(what the processing code raised before it existed). Its message names the item and the reason; the
describe engine prefixes the item's key. Prompt problems stay `PromptError`.
"""

from __future__ import annotations

from pixelrefer_core.errors import PixelReferError

__all__ = ["InputError"]


class InputError(PixelReferError, ValueError):
    """A model input is invalid: the message names the thing (mask i, frame j, item key) and the reason."""
