"""Errors of the embedders and of search text. A model that cannot be found or loaded raises the core's
`ModelLoadError` (a run stops on it, like on a describe model that cannot load)."""

from __future__ import annotations

from pixelrefer_core.errors import PixelReferError

__all__ = ["EmbedderError", "EmbedderMismatchError", "QueryTextError", "UnknownEmbedderError"]


class EmbedderError(PixelReferError, ValueError):
    """An embedder reference or its use is invalid; the message names it and says what is allowed."""


class UnknownEmbedderError(EmbedderError):
    """The embedder reference names no library we support (or is malformed)."""


class EmbedderMismatchError(EmbedderError):
    """Vectors were made by one embedder and the query would be embedded by another (a different model,
    revision or dimension): ranking them against each other would be meaningless, so it is refused."""

    def __init__(self, expected: str, found: str, hint: str = ""):
        self.expected = expected
        self.found = found
        super().__init__(f"the vectors were made by {expected}, but the embedder here is {found}"
                         + (f": {hint}" if hint else ""))


class QueryTextError(PixelReferError, ValueError):
    """A search text cannot be searched for (empty, or only stop words); the message says why."""
