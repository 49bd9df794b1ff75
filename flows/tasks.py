"""Prefect tasks: thin wrappers over the stage functions, with the orchestration policy in decorators.

- retries for transient failures only (`transient_only` refuses the permanent and systemic errors of
  flows.stages.units);
- no result caching: whether a unit is already done is decided by the catalog and the unit's files
  (flows.stages.units), which every worker of a store shares; a Prefect cache would be a second,
  per-server answer to the same question that cannot see a deleted or damaged file;
- model work under the Prefect global concurrency limit `settings.gpu_limit` (see flows.runtime).
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows import runtime
from flows.progress import progress
from flows.run_context import open_store
from flows.settings import RunSettings
from flows.stages import describe as describe_stage
from flows.stages import discover, ingest, track
from flows.stages.outcomes import DescribeOutcome, IngestOutcome, TrackOutcome
from flows.stages.units import PERMANENT_ERRORS, SYSTEMIC_ERRORS

__all__ = ["describe_task", "ingest_task", "refresh_views_task", "track_task", "transient_only"]

log = logging.getLogger(__name__)


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """retry_condition_fn: retry unless the failure is deterministic (bad video, bad prompt, bad model)."""
    return not isinstance(state.result(raise_on_failure=False), PERMANENT_ERRORS + SYSTEMIC_ERRORS)


_POLICY: dict[str, Any] = dict(retry_condition_fn=transient_only, cache_policy=NO_CACHE)


@task(name="ingest", retries=2, retry_delay_seconds=2, task_run_name="ingest {source.uri}", **_POLICY)
def ingest_task(settings: RunSettings, source: discover.VideoSource, video_id: str | None = None) -> IngestOutcome:
    return ingest.ingest_video(open_store(settings), source, settings.worker_id, video_id=video_id,
                               lease_s=settings.claim_lease_s)


@task(name="track", retries=1, retry_delay_seconds=2, task_run_name="track {video.uri}", **_POLICY)
def track_task(settings: RunSettings, video: IngestOutcome, setup: track.TrackingSetup) -> TrackOutcome:
    return track.track_one(open_store(settings), video, setup, runtime.get_segmenter(settings), settings.worker_id,
                           lease_s=settings.claim_lease_s)


@task(name="describe", retries=1, retry_delay_seconds=5, **_POLICY)
def describe_task(settings: RunSettings, units: list[describe_stage.DescribeUnit], model_id: str,
                  run_id: str) -> list[DescribeOutcome]:
    handle = runtime.model_handle(settings)
    with runtime.gpu_slot(settings):
        return describe_stage.describe_units(
            open_store(settings), units, lambda: runtime.get_engine(handle, settings),
            frames_per_object=settings.frames_per_object, max_pairs=settings.max_pairs_per_video,
            model_id=model_id, run_id=run_id, worker_id=settings.worker_id,
            items_per_call=max(settings.batch_size * 4, 8), progress=progress, lease_s=settings.claim_lease_s,
            variant=handle.variant,
        )


@task(name="refresh-views", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def refresh_views_task(settings: RunSettings) -> None:
    open_store(settings).refresh_views()
