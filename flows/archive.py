"""`process_archive`: discover -> ingest -> track -> describe -> index -> refresh views, for every video of an
archive.

The plan (flows.plan) settles what is already done; only the rest becomes task runs. A failure of one
video is recorded (with its reason) and does not stop the others. The run, its parameters and its summary
go to the catalog's `runs` table and to a Prefect markdown artifact (flows.run_context).

No `from __future__ import annotations` here: Prefect reads the flow's annotations to validate its
parameters when a served or deployed run starts.
"""

import logging

from prefect import flow

from flows.index_phase import IndexPhase, add_index_summary, run_embedder, run_index
from flows.phases import run_describe, run_ingest, run_tracking
from flows.plan import mark_duplicates, plan_describe, plan_ingest, plan_tracking
from flows.progress import progress, timed
from flows.run_context import RunContext, record_requests, run_context
from flows.settings import RunSettings
from flows.stages.discover import Discovery, discover_videos
from flows.stages.outcomes import DescribeOutcome
from flows.summary import Failure, RunSummary, summarize
from flows.tasks import refresh_views_task
from flows.thumbnails_phase import run_thumbnails

__all__ = ["process_archive"]

log = logging.getLogger(__name__)


@flow(name="process-archive", log_prints=False)
def process_archive(settings: RunSettings) -> RunSummary:
    """Process every video of `settings.archive` into `settings.store`; returns the run summary."""
    with run_context(settings, "archive") as ctx:
        settings, store = ctx.settings, ctx.store
        timer = ctx.summary.stage_seconds
        # before any work: an embedder that cannot load stops the run (a tracking-only run needs none)
        embedder = run_embedder(settings, store) if settings.describe else ""
        with timed(timer, "ingest"):
            discovery = discover_videos(settings.archive or "", settings.extensions, settings.resolved_cache_dir)
            report_discovery(discovery, settings)
            ingest = plan_ingest(store, discovery)
            ingested = mark_duplicates(ingest.settled + run_ingest(ctx, ingest.todo))
        with timed(timer, "track"):
            track, unmatched = plan_tracking(settings, store, ingested)
            tracked = track.settled + run_tracking(ctx, track.todo)
            record_requests(ctx, ingested, tracked)
        with timed(timer, "thumbnails"):
            run_thumbnails(ctx, tracked)
        described: list[DescribeOutcome] = []
        indexed = IndexPhase()
        if settings.describe:  # else: tracking only (--no-describe); a describe run does the rest
            with timed(timer, "describe"):
                describe = plan_describe(settings, store, ctx.prompts, tracked, create_model=True)
                assert describe is not None  # with create_model the model's identity is always known
                described = describe.settled + run_describe(ctx, describe.todo)
            with timed(timer, "index"):
                indexed = run_index(ctx, described, embedder)
        with timed(timer, "views"):
            refresh_views_task(settings)
        summarize(ctx.summary, ingested, tracked, described)
        add_index_summary(ctx.summary, indexed, settings.store)
        if settings.report_dir:
            with timed(timer, "report"):
                refresh_report(ctx)
        ctx.summary.failures[:0] = [Failure(who=e.uri, stage="discover", reason=e.reason) for e in discovery.skipped]
        ctx.summary.notes += [f"seed for {s.video!r} matches no video of the archive" for s in unmatched]
        if not settings.describe:
            ctx.summary.notes.append(f"not described (--no-describe): `pixelrefer describe --store {settings.store}` "
                                     "(or the describe deployment) describes what was tracked")
    return ctx.summary


def refresh_report(ctx: RunContext) -> None:
    """Rebuild the static report at the end of the run (`--report DIR`); a report that cannot be written is
    a note in the summary, never a failed run."""
    from flows.report.build import build_report
    from flows.report.data import open_store_for_reading
    from flows.report.publish import ReportTargetError
    from storage import StoreError

    settings = ctx.settings
    assert settings.report_dir is not None
    try:
        store = open_store_for_reading(settings.store, settings.resolved_catalog_url)
        try:
            result = build_report(store, settings.report_dir)
        finally:
            store.close()
    except (ReportTargetError, StoreError, OSError) as exc:
        ctx.summary.notes.append(f"report not refreshed: {exc}")
        return
    ctx.report_index = result.index
    ctx.summary.notes.append(f"report: file://{result.index}")
    progress(f"report: {result.videos} video(s), {result.objects} object(s) -> file://{result.index}")


def report_discovery(discovery: Discovery, settings: RunSettings) -> None:
    found, skipped = discovery.sources, discovery.skipped
    progress(f"found {len(found)} video file(s) under {settings.archive}"
             + ("" if found or skipped else f" (looked for {', '.join(settings.extensions)}): nothing to do")
             + (f"; skipped {len(skipped)} unusable entr{'y' if len(skipped) == 1 else 'ies'}" if skipped else ""))
    for entry in skipped:
        progress(f"  skipped {entry.uri}: {entry.reason}")
