"""Where a checkpoint is and what it is: local folders and hub ids, their identity, and strict key checks.

No model import here (the modeling modules and the loader both use this module; neither imports the
other's internals through it).

Identity (`ResolvedCheckpoint.model_id`, recorded in describe keys and in `descriptions.model_id`):
- a hub id gives `"<owner/name>@<commit sha>"`: the commit of the snapshot `huggingface_hub` resolved
  (a branch or tag is resolved to the commit it points to, so a key never says `@main`);
- a local folder gives `"<folder name>@<12 hex digits>"`, a sha256 over its `.json`/`.txt` files' names and
  bytes (config, generation config, index, tokenizer files) and its other files' names and sizes (weights),
  so the same checkpoint gets the same identity wherever it is stored. (This is the identity the flows
  recorded before it moved here; it is unchanged so existing describe keys stay valid.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelrefer_core.errors import ModelLoadError

__all__ = [
    "HUB_PATTERNS",
    "SUPPORTED_MODEL_TYPES",
    "checkpoint_model_type",
    "ResolvedCheckpoint",
    "check_loading_info",
    "local_checkpoint_identity",
    "resolve_checkpoint",
    "resolve_checkpoint_dir",
]

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# What a checkpoint folder needs: configs, weights (.safetensors / .bin, sharded or not), tokenizer files.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.bin", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


# model_type of each variant's config.json (= PixelReferConfig / PixelReferLiteConfig.model_type).
SUPPORTED_MODEL_TYPES = {"pixelrefer_qwen2": "PixelRefer", "pixelreferlite_qwen2": "PixelRefer-Lite"}


def checkpoint_model_type(checkpoint_dir: str | os.PathLike[str]) -> str:
    """The `model_type` of a checkpoint folder's config.json; ModelLoadError unless it is one we support."""
    path = Path(checkpoint_dir) / "config.json"
    try:
        model_type = json.loads(path.read_text()).get("model_type")
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: cannot read the checkpoint config: {err}") from err
    if model_type not in SUPPORTED_MODEL_TYPES:
        supported = ", ".join(f"{k!r} ({v})" for k, v in SUPPORTED_MODEL_TYPES.items())
        raise ModelLoadError(
            f"{path}: model_type {model_type!r} is not supported; expected one of {supported}"
        )
    return str(model_type)


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """path: the local checkpoint folder; model_id: its identity (see the module docstring)."""

    path: Path
    model_id: str


def local_checkpoint_identity(path: str | os.PathLike[str]) -> str:
    """`"<folder name>@<12 hex digits>"` for a local checkpoint folder (see the module docstring)."""
    folder = Path(path)
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        item = folder / name
        if not item.is_file():
            continue
        if name.endswith((".json", ".txt")):
            digest.update(name.encode() + b"\0" + item.read_bytes())
        else:
            digest.update(f"{name}:{item.stat().st_size}".encode())
    return f"{os.path.basename(os.path.normpath(os.fspath(path)))}@{digest.hexdigest()[:12]}"


def _is_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and not text.startswith((".", "~"))


def resolve_checkpoint(
    id_or_dir: str | os.PathLike[str],
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    config_only: bool = False,
) -> ResolvedCheckpoint:
    """The local folder and identity of a checkpoint directory or hub id.

    A local directory is used as is (it must hold `config.json`; `revision` must be None). Anything that
    looks like a path (absolute, starting with `.` or `~`, or with more than one `/`) and does not exist is
    an error. Otherwise `owner/name` is fetched with `huggingface_hub.snapshot_download` at `revision`
    (default branch when None) into `cache_dir` (the HF cache when None); offline (`HF_HUB_OFFLINE=1`) the
    cache's `refs/<revision>` and `snapshots/<commit>` are used. `config_only=True` fetches only
    `config.json`: enough to learn the commit (the identity) without downloading the weights.
    Raises ModelLoadError naming the argument and the reason.
    """
    text = str(id_or_dir)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path}: not a checkpoint directory (no config.json)")
        if revision is not None:
            raise ModelLoadError(
                f"{path}: a revision ({revision!r}) was given for a local folder; revisions apply to hub ids"
            )
        return ResolvedCheckpoint(path=path, model_id=local_checkpoint_identity(path))
    if path.exists():
        raise ModelLoadError(f"{path}: is a file; pass the checkpoint directory")
    if not _is_hub_id(text):
        raise ModelLoadError(
            f"{text}: no such checkpoint directory (and not a hub id of the form owner/name)"
        )
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id=text,
            revision=revision,
            cache_dir=None if cache_dir is None else Path(cache_dir),
            allow_patterns=["config.json"] if config_only else HUB_PATTERNS,
        )
    except Exception as err:  # network, auth, offline mode without a cached snapshot, unknown repo/revision
        at = f" at revision {revision!r}" if revision else ""
        raise ModelLoadError(f"{text}{at}: not a local directory and the hub download failed: {err}") from err
    snapshot = Path(folder)
    commit = snapshot.name
    if not _COMMIT.match(commit):  # a hub snapshot folder is named after its commit; anything else is odd
        raise ModelLoadError(f"{text}: huggingface_hub returned {snapshot}, not a snapshot/<commit> folder")
    if not (snapshot / "config.json").is_file():
        raise ModelLoadError(f"{text}@{commit}: the snapshot has no config.json; not a checkpoint repository")
    return ResolvedCheckpoint(path=snapshot, model_id=f"{text}@{commit}")


def resolve_checkpoint_dir(
    id_or_dir: str | os.PathLike[str],
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """The local checkpoint folder of `resolve_checkpoint(id_or_dir, revision)`."""
    return resolve_checkpoint(id_or_dir, revision, cache_dir=cache_dir).path


def _listed(keys: list[str], what: str) -> str:
    more = " ..." if len(keys) > 20 else ""
    return f"{what} ({len(keys)}): {', '.join(keys[:20])}{more}"


def check_loading_info(
    info: Mapping[str, Any],
    *,
    tie_word_embeddings: bool,
    optional_key_patterns: tuple[str, ...],
    model_name: str,
    where: str,
) -> None:
    """Raise ModelLoadError when the checkpoint's keys don't match the model.

    `info` is transformers' loading info (missing / unexpected / mismatched keys). Allowed gaps: a missing
    `lm_head.weight` when the embeddings are tied, and missing keys matching `optional_key_patterns`
    (weights our model holds but never uses, which a checkpoint may omit).
    """
    missing = sorted(info.get("missing_keys") or ())
    unexpected = sorted(info.get("unexpected_keys") or ())
    mismatched = list(info.get("mismatched_keys") or ())
    if tie_word_embeddings:
        missing = [k for k in missing if k != "lm_head.weight"]
    allowed = [k for k in missing if any(re.match(p, k) for p in optional_key_patterns)]
    if allowed:
        logger.info(
            "%s: %d unused weights absent from the checkpoint (initialised randomly)", where, len(allowed)
        )
    missing = [k for k in missing if k not in allowed]
    problems = []
    if missing:
        problems.append(_listed(missing, "missing keys"))
    if unexpected:
        problems.append(_listed(unexpected, "unexpected keys"))
    if mismatched:
        problems.append(f"shape mismatches: {mismatched[:10]}")
    if problems:
        raise ModelLoadError(f"{where}: checkpoint does not match {model_name}: " + "; ".join(problems))
