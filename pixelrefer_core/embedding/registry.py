"""Building an embedder from a reference or an identity (pixelrefer_core.embedding.ids)."""

from __future__ import annotations

import logging

from pixelrefer_core.embedding.base import Embedder
from pixelrefer_core.embedding.errors import EmbedderMismatchError
from pixelrefer_core.embedding.ids import WORDLLAMA, parse_ref

__all__ = ["build_embedder"]

log = logging.getLogger(__name__)


def build_embedder(ref: str, device: str = "cpu", batch_size: int | None = None) -> Embedder:
    """The embedder `ref` names, loaded. When `ref` is a full identity (with revision and dimension), what
    loads here must be that embedder: EmbedderMismatchError otherwise (another wordllama version, a hub
    revision that moved, a local folder whose files changed), so vectors are never compared with a
    query embedded by another model.

    Raises UnknownEmbedderError (a bad reference), EmbedderError (a dimension or device that cannot be
    had) or ModelLoadError (the model cannot be found or loaded).
    """
    parsed = parse_ref(ref)
    options = {} if batch_size is None else {"batch_size": batch_size}
    embedder: Embedder
    if parsed.library == WORDLLAMA:
        from pixelrefer_core.embedding.wordllama_embedder import WordLlamaEmbedder

        embedder = WordLlamaEmbedder(parsed.model, dim=parsed.dim, **options)
        if parsed.revision is not None and embedder.embedder_id != parsed.identity:
            raise EmbedderMismatchError(parsed.identity, embedder.embedder_id,
                                        "install that wordllama version, or re-index with this one "
                                        "(pixelrefer index --embedder wordllama)")
        return embedder
    from pixelrefer_core.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(parsed.model, revision=parsed.revision, dim=parsed.dim, device=device,
                                           **options)
    if parsed.revision is not None and parsed.dim is not None and embedder.embedder_id != parsed.identity:
        raise EmbedderMismatchError(parsed.identity, embedder.embedder_id,
                                    "the model changed since the vectors were made: re-index with "
                                    f"pixelrefer index --embedder {parsed.library}:{parsed.model}")
    return embedder
