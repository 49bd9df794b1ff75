"""Heavy objects built once per worker process: segmenters, describe models, the tiny checkpoint; and the
GPU slot that bounds model work.

Caches are module-level dicts keyed by what identifies the object (kind/checkpoint/device/profile for
segmenters, checkpoint path/device for models), so every task run in a worker reuses them. torch,
transformers and sam2 are imported inside the functions that build models: planning a run and its
keys must not pay seconds of imports for a model it may never load.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flows.settings import RunSettings
from flows.stages.describe_items import FULL, LITE
from pixelrefer_core.checkpoints import checkpoint_model_type, resolve_checkpoint
from pixelrefer_core.errors import ModelLoadError
from storage.atomic import atomic_path

if TYPE_CHECKING:
    from pixelrefer_core.inference import DescribeEngine
    from pixelrefer_core.tracking import Segmenter

__all__ = ["REPETITION_PENALTY", "ModelHandle", "frame_selection_params", "generation_params", "get_engine",
           "get_segmenter", "gpu_slot", "model_handle", "model_identity", "resolve_model_ref", "tiny_model_dir"]

log = logging.getLogger(__name__)
_lock = threading.Lock()
_SEGMENTERS: dict[tuple[Any, ...], Segmenter] = {}
_MODELS: dict[tuple[str, str], tuple[Any, Any]] = {}  # (model_id, device) -> (model, tokenizer)
_LIMITS_SEEN: dict[str, bool] = {}

TINY_MODEL_SUBDIR = os.path.join("models", "pixelrefer-lite-tiny")
# Reference §6.1: the released generation_config applies repetition_penalty=1.1 under greedy decoding.
REPETITION_PENALTY = 1.1


def quiet_model_bars() -> None:
    """No tqdm bars while weights are loaded or written (they are noise in a run's output), unless debug
    logging is on; hub download bars are huggingface_hub's and stay."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def tiny_model_dir(store_root: str, create: bool = True) -> str:
    """The tiny random PixelRefer-Lite checkpoint under the store, created on first use."""
    from storage.remote import is_url, local_cache_dir

    # a checkpoint is loaded from a local folder: a remote store's tiny model lives on this machine
    out = os.path.join(local_cache_dir(store_root, "tiny-model") if is_url(store_root) else store_root,
                       TINY_MODEL_SUBDIR)
    if create and not os.path.isfile(os.path.join(out, "config.json")):
        from pixelrefer_core.model.tiny import save_tiny_checkpoint

        quiet_model_bars()
        with _lock:
            if not os.path.isfile(os.path.join(out, "config.json")):
                log.info("creating the tiny PixelRefer-Lite checkpoint in %s", out)
                try:
                    with atomic_path(out) as tmp:
                        save_tiny_checkpoint(tmp, seed=0)
                except OSError:  # another process made it first
                    if not os.path.isfile(os.path.join(out, "config.json")):
                        raise
    return out


def resolve_model_ref(settings: RunSettings, create: bool = True) -> str:
    """The checkpoint to load: --model, or the tiny checkpoint under the store with profile 'tiny'."""
    if settings.model:
        return settings.model
    return tiny_model_dir(settings.store, create=create)


def model_identity(model_ref: str, revision: str | None = None) -> ModelHandle:
    """Where the describe model is and what it is (see pixelrefer_core.checkpoints): a local folder's
    identity hashes its files; a hub id is resolved to the commit `revision` (default branch when None)
    points to, fetching only its config, so describe keys name what is loaded and change with the model."""
    resolved = resolve_checkpoint(model_ref, revision, config_only=True)
    local = os.path.isdir(model_ref)
    commit = None if local else resolved.model_id.rsplit("@", 1)[1]
    variant = FULL if checkpoint_model_type(resolved.path) == "pixelrefer_qwen2" else LITE
    return ModelHandle(ref=model_ref, revision=commit, model_id=resolved.model_id, device="", variant=variant)


def get_segmenter(settings: RunSettings) -> Segmenter:
    """The segmenter of these settings (SAM 2 built once per process; motion fresh per call)."""
    from pixelrefer_core.tracking import build_segmenter

    kind, checkpoint = settings.resolved_segmenter, settings.segmenter_checkpoint
    if kind == "motion":  # keeps a per-video background model: a fresh (cheap) one for every video
        return build_segmenter("motion", checkpoint=None, device=settings.device, profile=settings.profile)
    options = settings.segmenter_options()
    key = (kind, checkpoint, settings.device, settings.profile, repr(sorted(options.items())))
    with _lock:
        if key not in _SEGMENTERS:
            log.info("building segmenter %s (checkpoint %s) on %s", kind, checkpoint or "-", settings.device)
            _SEGMENTERS[key] = build_segmenter(kind, checkpoint=checkpoint, device=settings.device,
                                               profile=settings.profile, **options)
        return _SEGMENTERS[key]


@dataclass(frozen=True)
class ModelHandle:
    """What identifies a describe model: the reference to load (a folder, or a hub id at `revision`, the
    resolved commit), its identity for keys, and the device to load it on."""

    ref: str
    revision: str | None
    model_id: str
    device: str
    variant: str = LITE  # LITE (PixelRefer-Lite) or FULL (PixelRefer), from the checkpoint's model_type


def model_handle(settings: RunSettings) -> ModelHandle:
    handle = model_identity(resolve_model_ref(settings), settings.model_revision)
    return ModelHandle(handle.ref, handle.revision, handle.model_id, settings.device, handle.variant)


def get_model(handle: ModelHandle) -> tuple[Any, Any]:
    """(model, tokenizer) for `handle`, loaded once per process."""
    from pixelrefer_core.model import load_pixelrefer

    key = (handle.model_id, handle.device)
    with _lock:
        if key not in _MODELS:
            log.info("loading PixelRefer %s on %s", handle.model_id, handle.device)
            quiet_model_bars()
            try:
                _MODELS[key] = load_pixelrefer(handle.ref, device=handle.device, revision=handle.revision)
            except ModelLoadError:
                raise
            except Exception as exc:  # whatever breaks while building the model breaks it for every video
                raise ModelLoadError(f"{handle.model_id}: cannot load the model: {type(exc).__name__}: {exc}") from exc
        return _MODELS[key]


def get_engine(handle: ModelHandle, settings: RunSettings) -> DescribeEngine:
    """A DescribeEngine over the cached model with the run's generation settings."""
    from pixelrefer_core.inference import DescribeEngine

    model, tokenizer = get_model(handle)
    return DescribeEngine(
        model, tokenizer, batch_size=settings.batch_size, max_new_tokens=settings.max_new_tokens,
        repetition_penalty=REPETITION_PENALTY, seed=settings.seed,
    )


def generation_params(settings: RunSettings) -> dict[str, Any]:
    """Generation parameters that change answers (part of describe_key)."""
    return {"max_new_tokens": settings.max_new_tokens, "repetition_penalty": REPETITION_PENALTY,
            "do_sample": False, "seed": settings.seed}


def frame_selection_params(settings: RunSettings, variant: str = LITE) -> dict[str, Any]:
    """Frame-selection parameters that change answers (part of describe_key). Lite: the k best views
    carry the masks. Full: the LLM sees k frames spread over the span (one frame: an image), the decoder's
    timestamps, and one best view per object carries its mask."""
    params: dict[str, Any] = {"k": settings.frames_per_object, "max_pairs_per_video": settings.max_pairs_per_video,
                              "selector": "select_frames"}
    if variant == FULL:
        params.update(variant=FULL, llm_frames="span_frames", one_frame="image", mask_frames="select_frames",
                      mask_k=1, timestamps="decoder")
    return params


def _limit_exists(name: str) -> bool:
    """Whether the Prefect global concurrency limit `name` exists (asked once per process)."""
    if name not in _LIMITS_SEEN:
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        try:
            with get_client(sync_client=True) as client:
                client.read_global_concurrency_limit_by_name(name)
            _LIMITS_SEEN[name] = True
        except ObjectNotFound:
            _LIMITS_SEEN[name] = False
            log.info("no Prefect concurrency limit %r: model work is not bounded across workers; create it with "
                     "`prefect gcl create %s --limit <number of GPUs>`", name, name)
    return _LIMITS_SEEN[name]


@contextlib.contextmanager
def gpu_slot(settings: RunSettings) -> Iterator[None]:
    """Hold one slot of the `settings.gpu_limit` concurrency limit around model work, when it exists."""
    if not _limit_exists(settings.gpu_limit):
        yield
        return
    from prefect.concurrency.sync import concurrency

    # The shortest lease Prefect allows (renewed while held): a dead machine's slot comes back in a minute.
    with concurrency(settings.gpu_limit, occupy=1, strict=False, lease_duration=60):
        yield
