"""What every embedder is: an identity, a dimension, and texts -> L2-normalised float32 vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from pixelrefer_core.embedding.errors import EmbedderError

if TYPE_CHECKING:
    from pixelrefer_core.embedding.ids import EmbedderRef

__all__ = ["Embedder", "RefEmbedder", "check_texts", "l2_normalise"]


@runtime_checkable
class Embedder(Protocol):
    """Texts to vectors. `embedder_id` names library, model, revision and dimension
    (pixelrefer_core.embedding.ids); it is recorded with every vector, so vectors of different embedders
    are never ranked against each other."""

    @property
    def embedder_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Documents (descriptions) -> float32 [len(texts), dim], each row of unit L2 norm, computed in
        batches; row i is the vector of texts[i]."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Search texts -> vectors comparable with `embed`'s (models with a query prompt use it here)."""
        ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """`texts` as a list of strings; EmbedderError naming the first one that is not a non-blank string
    (an empty text has no meaning to embed, and would give a zero vector)."""
    if isinstance(texts, str):
        raise EmbedderError("embed() takes a sequence of texts, not one string (wrap it in a list)")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise EmbedderError(f"text {i} is {type(text).__name__}, not a string")
        if not text.strip():
            raise EmbedderError(f"text {i} is empty")
    return out


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as contiguous float32 (a zero row, which no real text gives, stays zero)."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    if out.ndim != 2:
        raise EmbedderError(f"expected a 2-d array of vectors, got shape {out.shape}")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


class RefEmbedder:
    """What the library embedders share: the identity and dimension of their resolved `EmbedderRef`
    (`self._ref`, set by the subclass once its model is loaded), the input checks, and unit-norm output.
    A subclass gives `_vectors(texts, query)`: raw vectors of non-empty, checked texts."""

    _ref: EmbedderRef

    @property
    def embedder_id(self) -> str:
        return self._ref.identity

    @property
    def dim(self) -> int:
        assert self._ref.dim is not None
        return self._ref.dim

    def _vectors(self, texts: list[str], query: bool) -> np.ndarray:
        raise NotImplementedError

    def _embed(self, texts: Sequence[str], query: bool) -> np.ndarray:
        items = check_texts(texts)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalise(self._vectors(items, query))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=True)
