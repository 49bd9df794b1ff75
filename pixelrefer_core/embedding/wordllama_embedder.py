"""The default embedder: WordLlama (static token embeddings, average-pooled), offline on CPU.

The wordllama package ships the weights of its `l2_supercat` model (256 dimensions) and their tokenizer,
so it works on a machine with no network. Two quirks of wordllama 0.4 are handled here, in one place:

- its loader looks for the shipped tokenizer under ``wordllama/tokenizer/`` while the package ships it
  under ``wordllama/tokenizers/``, then tries to download it; loading with ``cache_dir`` = the package
  folder (whose ``weights/`` and ``tokenizers/`` sub-folders are what the cache layout expects) finds
  both shipped files, with downloads disabled;
- importing it calls ``logging.basicConfig(level=INFO)``, which would make every library's INFO records
  print in a program that configured no logging: that root handler is removed again.

Smaller dimensions (64, 128) are Matryoshka truncations of the 256-d weights (wordllama's `trunc_dim`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from pixelrefer_core.embedding.base import RefEmbedder
from pixelrefer_core.embedding.errors import EmbedderError
from pixelrefer_core.embedding.ids import WORDLLAMA, WORDLLAMA_SHIPPED, EmbedderRef
from pixelrefer_core.errors import ModelLoadError

__all__ = ["WordLlamaEmbedder"]

log = logging.getLogger(__name__)
SHIPPED = WORDLLAMA_SHIPPED
TRUNCATIONS = (64, 128, 256)


def _import_wordllama() -> Any:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
    except ImportError as exc:
        raise ModelLoadError("the wordllama embedder needs the wordllama package: pip install wordllama") from exc
    finally:
        for handler in root.handlers[len(handlers):] if not handlers else []:
            root.removeHandler(handler)
        root.setLevel(level)
    return wordllama


class WordLlamaEmbedder(RefEmbedder):
    """`WordLlamaEmbedder(config="l2_supercat", dim=256, batch_size=256)`; see the module docstring."""

    def __init__(self, config: str = "l2_supercat", dim: int | None = None, batch_size: int = 256):
        if batch_size < 1:
            raise EmbedderError(f"batch_size must be at least 1, not {batch_size}")
        wordllama = _import_wordllama()
        shipped = SHIPPED.get(config)
        dim = dim or shipped or 256
        self.batch_size = batch_size
        self._ref = EmbedderRef(WORDLLAMA, config).resolved(wordllama.__version__, dim)
        if shipped is not None:
            if dim not in TRUNCATIONS or dim > shipped:
                raise EmbedderError(f"wordllama:{config}: dimension {dim} is not available here; the package ships "
                                    f"{shipped}-d weights, usable as {', '.join(map(str, TRUNCATIONS))}")
            options: dict[str, Any] = dict(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True,
                                           dim=shipped, trunc_dim=None if dim == shipped else dim)
        else:  # another config: from ~/.cache/wordllama, or downloaded (needs the network)
            options = dict(dim=dim)
        try:
            self._model = wordllama.WordLlama.load(config, **options)
        except AttributeError:
            known = ", ".join(wordllama.WordLlama.list_configs()["wordllama"])
            raise EmbedderError(f"wordllama has no model {config!r}; its models: {known}") from None
        except (OSError, ValueError) as exc:  # missing files, offline, a dimension the model lacks
            raise ModelLoadError(f"wordllama:{config} (dim {dim}) cannot be loaded: {exc}") from exc
        log.debug("loaded %s", self.embedder_id)

    def _vectors(self, texts: list[str], query: bool) -> np.ndarray:
        # a symmetric model: queries and documents embed alike
        return self._model.embed(texts, norm=False, batch_size=self.batch_size)

    def __repr__(self) -> str:
        return f"WordLlamaEmbedder({self.embedder_id!r})"
