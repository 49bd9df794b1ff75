"""The thumbnails phase of an archive run, right after tracking: one Prefect task over the tracked videos
whose `object_thumbnails` unit is not done (flows.stages.thumbnails does each unit).

A thumbnail failure never fails the run: it is recorded for its unit (retryable) and listed in the
summary; the report then shows that video's objects without images until a later run (or
`pixelrefer thumbnails`) makes them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.progress import progress
from flows.run_context import RunContext, open_store
from flows.settings import RunSettings
from flows.stages.outcomes import Status, TrackOutcome
from flows.stages.thumbnails import ThumbnailsOutcome, ThumbnailTarget, make_thumbnails, thumbnails_ref
from flows.stages.units import error_text, prior_status
from flows.tasks import transient_only

__all__ = ["run_thumbnails", "thumbnails_task"]


@task(name="thumbnails", retries=1, retry_delay_seconds=2, retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def thumbnails_task(settings: RunSettings, targets: list[ThumbnailTarget]) -> list[ThumbnailsOutcome]:
    store = open_store(settings)
    out = []
    for target in targets:
        try:
            out.append(make_thumbnails(store, target, settings.worker_id, settings.claim_lease_s))
        except Exception as exc:  # recorded (retryable) by run_unit: the other videos go on
            out.append(ThumbnailsOutcome(target.video_id, target.track_key, target.uri, Status.FAILED,
                                         error=error_text(exc)))
    return out


def run_thumbnails(ctx: RunContext, tracked: Sequence[TrackOutcome]) -> list[ThumbnailsOutcome]:
    """Thumbnails of the tracked videos not done yet; failures go to the run summary."""
    targets = []
    for t in tracked:
        if t.status not in (Status.DONE, Status.SKIPPED):
            continue
        if prior_status(ctx.store, thumbnails_ref(t.video_id, t.track_key, t.uri)) is not None:
            continue  # done (or failed for good) already
        path = t.local_path if os.path.isfile(t.local_path) else None
        targets.append(ThumbnailTarget(t.video_id, t.track_key, t.uri, path,
                                       None if path else f"source {t.uri} not found"))
    if not targets:
        return []
    progress(f"thumbnails: {len(targets)} tracked video(s)")
    state = thumbnails_task(ctx.settings, targets, return_state=True)
    if state.is_completed():
        outcomes: list[ThumbnailsOutcome] = state.result()
    else:
        exc = state.result(raise_on_failure=False)
        reason = error_text(exc) if isinstance(exc, BaseException) else "the thumbnails task failed"
        outcomes = [ThumbnailsOutcome(t.video_id, t.track_key, t.uri, Status.FAILED, error=reason) for t in targets]
    for o in outcomes:
        if o.status == Status.FAILED or (o.status == Status.SKIPPED and o.error):
            ctx.summary.fail(o.uri, "thumbnails", o.error or "failed")
    return outcomes
