"""Stronger embedders on users' machines: any sentence-transformers model, by hub id or local folder, on
CPU or GPU.

Identity (pixelrefer_core.embedding.ids): a hub id is resolved by `huggingface_hub.snapshot_download` to
the commit its revision points to (offline: the cached snapshot), and the model is loaded from that
snapshot folder, so the identity names exactly what ran; a local folder is named by its absolute path
and a hash of its files (`folder_fingerprint`), so a re-saved or retrained model gets a new identity and
its vectors new units. Loading imports torch and transformers (seconds): nothing here is imported until
a sentence-transformers embedder is built.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from pixelrefer_core.embedding.base import RefEmbedder
from pixelrefer_core.embedding.errors import EmbedderError
from pixelrefer_core.embedding.ids import SENTENCE_TRANSFORMERS, EmbedderRef
from pixelrefer_core.errors import ModelLoadError

__all__ = ["SentenceTransformerEmbedder", "folder_fingerprint"]

log = logging.getLogger(__name__)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")
_WHOLE_FILE_LIMIT = 64 * 2**20  # files up to this size are hashed whole; larger ones by size, head and tail
_EDGE = 2**20


def folder_fingerprint(folder: str | os.PathLike[str]) -> str:
    """12 hex digits over every file under `folder` (relative names and contents; files over 64 MiB by
    size and their first and last MiB, so a multi-GB model is fingerprinted in milliseconds)."""
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = path.relative_to(root).as_posix()
        size = path.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        with path.open("rb") as fh:
            if size <= _WHOLE_FILE_LIMIT:
                digest.update(fh.read())
            else:
                digest.update(fh.read(_EDGE))
                fh.seek(size - _EDGE)
                digest.update(fh.read(_EDGE))
    return digest.hexdigest()[:12]


def _check_device(device: str) -> None:
    if not _DEVICE.match(device):
        raise EmbedderError(f"device {device!r}: use cpu, cuda, cuda:N or mps")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise EmbedderError(f"device {device} was asked for but this machine has no usable CUDA device "
                                f"(torch {torch.__version__}); use cpu")
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise EmbedderError(f"device {device} does not exist ({torch.cuda.device_count()} CUDA device(s))")


def _resolve(model: str, revision: str | None) -> tuple[str, str, str]:
    """(folder to load, model name for the identity, revision for the identity)."""
    path = Path(model).expanduser()
    if path.is_dir():
        folder = path.resolve()
        return str(folder), str(folder), folder_fingerprint(folder)
    if path.exists():
        raise ModelLoadError(f"sentence-transformers model {model}: is a file; give the model's folder")
    if not _HUB_ID.match(model) or model.startswith((".", "~", "/")):
        raise ModelLoadError(f"sentence-transformers model {model}: no such folder (and not a hub id owner/name)")
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(repo_id=model, revision=revision))
    except Exception as exc:  # offline without a cached snapshot, unknown repo or revision, no token
        at = f" at revision {revision!r}" if revision else ""
        raise ModelLoadError(f"sentence-transformers model {model}{at}: not a local folder and the hub download "
                             f"failed: {' '.join(str(exc).split())[:300]}") from exc
    if not _COMMIT.match(snapshot.name):
        raise ModelLoadError(f"{model}: huggingface_hub returned {snapshot}, not a snapshots/<commit> folder")
    return str(snapshot), model, snapshot.name


class SentenceTransformerEmbedder(RefEmbedder):
    """`SentenceTransformerEmbedder(model, revision=None, dim=None, device="cpu", batch_size=64)`.

    `model`: a hub id (`BAAI/bge-small-en-v1.5`) or a local folder saved by sentence-transformers;
    `revision`: a hub branch, tag or commit (an identity's 12-hex folder hash is checked, not loaded);
    `dim`: truncate to this many dimensions (Matryoshka models), default the model's own.
    """

    def __init__(self, model: str, revision: str | None = None, dim: int | None = None, device: str = "cpu",
                 batch_size: int = 64):
        if batch_size < 1:
            raise EmbedderError(f"batch_size must be at least 1, not {batch_size}")
        _check_device(device)
        local = Path(model).expanduser().is_dir()
        folder, name, resolved_revision = _resolve(model, None if local else revision)
        self.batch_size, self.device = batch_size, device
        self._model = self._load(folder, device, dim)
        model_dim = self._model.get_embedding_dimension()
        if not model_dim:
            raise ModelLoadError(f"sentence-transformers model {model}: its output dimension is unknown")
        if dim is not None and dim > model_dim:
            raise EmbedderError(f"sentence-transformers model {model} makes {model_dim}-d vectors; cannot give {dim}")
        self._ref = EmbedderRef(SENTENCE_TRANSFORMERS, name).resolved(resolved_revision, int(model_dim))
        log.debug("loaded %s on %s", self.embedder_id, device)

    @staticmethod
    def _load(folder: str, device: str, dim: int | None) -> Any:
        from pixelrefer_core.compat_torchvision import ensure_torchvision

        ensure_torchvision()  # transformers' modeling imports torchvision, whose CPU-torch ops need this
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelLoadError("sentence-transformers embedders need the sentence-transformers package") from exc
        try:
            return SentenceTransformer(folder, device=device, local_files_only=True, truncate_dim=dim)
        except Exception as exc:  # not a sentence-transformers folder, damaged weights, unknown architecture
            raise ModelLoadError(f"sentence-transformers model in {folder} cannot be loaded: "
                                 f"{' '.join(str(exc).split())[:300]}") from exc

    def _vectors(self, texts: list[str], query: bool) -> np.ndarray:
        encode = self._model.encode_query if query else self._model.encode_document
        return encode(texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
                      show_progress_bar=False)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.embedder_id!r}, device={self.device!r})"
