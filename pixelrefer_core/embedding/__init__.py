"""Text embeddings of descriptions, for search by meaning. Compute only: no storage, no Prefect.

    ids.py                          references ("wordllama", "sentence-transformers:BAAI/bge-small-en-v1.5")
                                    and identities (library:model@revision:dim, recorded with every vector)
    base.py                         the Embedder protocol: embed(texts) -> float32 [n, dim], unit L2 norm
    wordllama_embedder.py           the default: WordLlama, weights shipped in its package, offline on CPU
    sentence_transformers_embedder.py  any sentence-transformers model, hub id or folder, CPU or GPU
    registry.py                     build_embedder(reference or identity) -> Embedder
    query_text.py                   what a search text must be (not empty, not only stop words)

Nothing heavy is imported here: wordllama, torch and sentence-transformers load when an embedder is built.
"""

from __future__ import annotations

from pixelrefer_core.embedding.base import Embedder, l2_normalise
from pixelrefer_core.embedding.errors import (
    EmbedderError,
    EmbedderMismatchError,
    QueryTextError,
    UnknownEmbedderError,
)
from pixelrefer_core.embedding.ids import DEFAULT_EMBEDDER, LIBRARIES, EmbedderRef, parse_ref
from pixelrefer_core.embedding.query_text import STOP_WORDS, check_query_text
from pixelrefer_core.embedding.registry import build_embedder

__all__ = [
    "DEFAULT_EMBEDDER",
    "LIBRARIES",
    "STOP_WORDS",
    "Embedder",
    "EmbedderError",
    "EmbedderMismatchError",
    "EmbedderRef",
    "QueryTextError",
    "UnknownEmbedderError",
    "build_embedder",
    "check_query_text",
    "l2_normalise",
    "parse_ref",
]
