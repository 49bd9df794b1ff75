"""Prefect tasks: thin wrappers over the stage functions, with the orchestration policy in decorators.

- retries for transient failures only (`transient_only` refuses VideoError, PromptError, ModelLoadError);
- cache keys from unit-of-work keys (store + video_id + track/describe keys), given only once the catalog
  says the units are done and their files exist, so a deleted store is never "cached"; results persisted;
- model work under the Prefect concurrency limit `settings.gpu_limit` (absent limit: runs unbounded).
"""

from __future__ import annotations

import logging
import threading

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from flows.keys import stable_hash
from flows.settings import RunSettings
from flows.stages import describe as describe_stage
from flows.stages import discover, ingest, track
from flows.stages.outcomes import DescribeOutcome, IngestOutcome, TrackOutcome
from pixelrefer_core.errors import ModelLoadError, PromptError, VideoError
from storage import Store

__all__ = ["describe_task", "discover_task", "ingest_task", "open_store", "progress", "refresh_views_task",
           "track_task", "transient_only"]

log = logging.getLogger(__name__)
_progress_log = logging.getLogger("flows.progress")
_stores: dict[tuple, Store] = {}
_stores_lock = threading.Lock()
PERMANENT_ERRORS = (VideoError, PromptError, ModelLoadError)


def progress(message: str) -> None:
    """One line of progress (the CLI prints the `flows.progress` logger plainly)."""
    _progress_log.info(message)


def open_store(settings: RunSettings) -> Store:
    """The store of `settings`, opened once per process."""
    key = (settings.store, settings.resolved_catalog_url)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = Store.open(settings.store, catalog_url=settings.resolved_catalog_url)
        return _stores[key]


def transient_only(task, task_run, state) -> bool:
    """retry_condition_fn: retry unless the failure is deterministic (bad video, bad prompt, bad model)."""
    exc = state.result(raise_on_failure=False)
    return not isinstance(exc, PERMANENT_ERRORS)


def _track_cache_key(ctx, params) -> str | None:
    settings, video, setup = params["settings"], params["video"], params["setup"]
    store = open_store(settings)
    vid = video.video_id
    if store.catalog.unit_state(track.TRACK_STAGE, vid, setup.track_key) == "done" and store.has_unit(
        "objects", vid, setup.track_key
    ):
        return "pixelrefer-track-" + stable_hash([store.root, vid, setup.track_key])
    return None


def _describe_cache_key(ctx, params) -> str | None:
    settings, units = params["settings"], params["units"]
    store = open_store(settings)
    if not units:
        return None
    for u in units:
        if store.catalog.unit_state(describe_stage.DESCRIBE_STAGE, u.target.video_id, u.describe_key) != "done":
            return None
        if not store.has_unit("descriptions", u.target.video_id, u.describe_key):
            return None
    return "pixelrefer-describe-" + stable_hash([store.root] + sorted(u.describe_key + u.target.video_id for u in units))


@task(name="discover", retries=2, retry_delay_seconds=2, retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def discover_task(settings: RunSettings) -> list[discover.VideoSource]:
    return discover.discover_videos(settings.archive, settings.extensions, settings.resolved_cache_dir)


@task(name="ingest", retries=2, retry_delay_seconds=2, retry_condition_fn=transient_only, cache_policy=NO_CACHE,
      task_run_name="ingest {source.uri}")
def ingest_task(settings: RunSettings, source: discover.VideoSource) -> IngestOutcome:
    return ingest.ingest_video(open_store(settings), source, settings.worker_id)


@task(name="track", retries=1, retry_delay_seconds=2, retry_condition_fn=transient_only,
      cache_key_fn=_track_cache_key, persist_result=True, task_run_name="track {video.uri}")
def track_task(settings: RunSettings, video: IngestOutcome, setup: track.TrackingSetup, segmenter_id: str) -> TrackOutcome:
    from flows.runtime import get_segmenter

    return track.track_one(open_store(settings), video, setup, get_segmenter(settings), settings.worker_id)


@task(name="describe", retries=1, retry_delay_seconds=5, retry_condition_fn=transient_only,
      cache_key_fn=_describe_cache_key, persist_result=True)
def describe_task(settings: RunSettings, units: list[describe_stage.DescribeUnit], model_id: str,
                  run_id: str) -> list[DescribeOutcome]:
    from flows.runtime import get_engine, model_handle

    handle = model_handle(settings)
    with concurrency(settings.gpu_limit, occupy=1, strict=False):
        return describe_stage.describe_units(
            open_store(settings), units, lambda: get_engine(handle, settings),
            frames_per_object=settings.frames_per_object, max_pairs=settings.max_pairs_per_video,
            model_id=model_id, run_id=run_id, worker_id=settings.worker_id,
            items_per_call=max(settings.batch_size * 4, 8), progress=progress,
        )


@task(name="refresh-views", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def refresh_views_task(settings: RunSettings) -> None:
    open_store(settings).refresh_views()
