"""Embedder references and identities.

A *reference* is what a user types (``--embedder``); an *identity* (``embedder_id``) is what is recorded
with every vector and hashed into the unit keys of ``description_vectors``:

    library:model@revision:dim

- ``wordllama``, ``wordllama:l2_supercat``, ``wordllama:l2_supercat:128`` (a Matryoshka truncation of
  the 256-d weights the package ships) -> ``wordllama:l2_supercat@0.4.0.post1:256`` (revision: the
  version of the installed wordllama package, which pins its weights).
- ``sentence-transformers:<hub id or folder>`` (alias ``st:``; a bare ``owner/name`` or an existing
  folder means sentence-transformers too), optionally ``@revision`` for a hub id ->
  ``sentence-transformers:BAAI/bge-small-en-v1.5@<commit sha>:384`` for a hub id (the commit the
  revision resolved to) or ``sentence-transformers:/abs/folder@<12 hex>:384`` for a local folder (a hash
  of its files: a changed model gets a new identity).

An identity is itself a valid reference: building an embedder from it checks that what loads here is
that embedder (EmbedderMismatchError otherwise).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

from pixelrefer_core.embedding.errors import UnknownEmbedderError

__all__ = ["DEFAULT_EMBEDDER", "LIBRARIES", "WORDLLAMA_SHIPPED", "EmbedderRef", "parse_ref"]

DEFAULT_EMBEDDER = "wordllama"
WORDLLAMA = "wordllama"
SENTENCE_TRANSFORMERS = "sentence-transformers"
LIBRARIES = (WORDLLAMA, SENTENCE_TRANSFORMERS)
WORDLLAMA_SHIPPED = {"l2_supercat": 256}  # wordllama config -> dimension of the weights inside its package
_ALIASES = {"st": SENTENCE_TRANSFORMERS, "sentence_transformers": SENTENCE_TRANSFORMERS,
            "sentence-transformers": SENTENCE_TRANSFORMERS, "wordllama": WORDLLAMA}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_DIM = re.compile(r":(\d+)$")
_REVISION = re.compile(r"@([\w.\-]+)$")
FORMS = ("wordllama[:CONFIG[:DIM]]", "sentence-transformers:HUB_ID[@REVISION]", "sentence-transformers:FOLDER")


@dataclass(frozen=True)
class EmbedderRef:
    """A parsed reference: `model` is a wordllama config name, a hub id or a folder; `revision` and `dim`
    are None when not given (resolved when the embedder is built)."""

    library: str
    model: str
    revision: str | None = None
    dim: int | None = None

    @property
    def identity(self) -> str:
        """`library:model@revision:dim` (complete only once revision and dim are known)."""
        return (f"{self.library}:{self.model}" + (f"@{self.revision}" if self.revision else "")
                + (f":{self.dim}" if self.dim is not None else ""))

    def resolved(self, revision: str, dim: int) -> EmbedderRef:
        return replace(self, revision=revision, dim=dim)

    @property
    def expected_dim(self) -> int | None:
        """The dimension this reference gives: `dim`, else a shipped wordllama model's own (None: load to know)."""
        return self.dim if self.dim is not None else WORDLLAMA_SHIPPED.get(self.model) if self.library == WORDLLAMA \
            else None


def _bad(text: str, reason: str) -> UnknownEmbedderError:
    return UnknownEmbedderError(f"embedder {text!r}: {reason}; give one of: {', '.join(FORMS)} "
                                f"(default {DEFAULT_EMBEDDER})")


def parse_ref(text: str) -> EmbedderRef:
    """Parse a reference or identity (see the module docstring); UnknownEmbedderError when it is neither."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(str(text), "it is empty")
    text = text.strip()
    head, sep, rest = text.partition(":")
    library = _ALIASES.get(head.lower()) if sep or head.lower() == WORDLLAMA else None
    if library is None:
        if _HUB_ID.match(text.split("@", 1)[0]) or os.path.isdir(text):
            library, rest = SENTENCE_TRANSFORMERS, text  # a bare hub id or folder: sentence-transformers
        else:
            raise _bad(text, f"unknown library {head!r} (known: {', '.join(LIBRARIES)})" if sep
                       else "not a known library, a hub id (owner/name) or an existing folder")
    dim = None
    if (m := _DIM.search(rest)) is not None:
        dim, rest = int(m.group(1)), rest[: m.start()]
        if dim <= 0:
            raise _bad(text, "the dimension must be a positive integer")
    revision = None
    if (m := _REVISION.search(rest)) is not None:
        revision, rest = m.group(1), rest[: m.start()]
    if library == WORDLLAMA:
        return EmbedderRef(WORDLLAMA, rest or "l2_supercat", revision, dim)
    if not rest:
        raise _bad(text, "sentence-transformers needs a model: a hub id (owner/name) or a folder")
    return EmbedderRef(SENTENCE_TRANSFORMERS, rest, revision, dim)
