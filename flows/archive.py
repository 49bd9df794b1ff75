"""`process_archive`: discover -> ingest -> track -> describe -> refresh views, for every video of an archive.

Every stage skips units the catalog records as done with the same key; a failure of one video is recorded
(with its reason) and does not stop the others. The run, its parameters and its summary go to the
catalog's `runs` table and to a Prefect markdown artifact.
"""


import logging
import time

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.prompts import DEFAULT_PROMPTS, load_prompts
from flows.runtime import frame_selection_params, generation_params, model_handle
from flows.seeds import load_seeds, seeds_for_video
from flows.settings import RunSettings, default_worker_id, env_value
from flows.stages.describe import DescribeSetup, DescribeTarget, plan_units
from flows.stages.track import tracking_setup
from flows.summary import RunSummary, summarize
from flows.tasks import (
    describe_task,
    discover_task,
    ingest_task,
    open_store,
    progress,
    refresh_views_task,
    track_task,
)

__all__ = ["describe_setup", "process_archive", "tracker_config"]

log = logging.getLogger(__name__)


def tracker_config(settings: RunSettings):
    """The TrackerConfig of a run (its defaults, with the run's sample fps)."""
    from pixelrefer_core.tracking import TrackerConfig

    return TrackerConfig(sample_fps=settings.sample_fps)


def describe_setup(settings: RunSettings) -> DescribeSetup:
    from pixelrefer_core.inference import ENGINE_VERSION

    return DescribeSetup(
        model_id=model_handle(settings).model_id, generation=generation_params(settings),
        frame_selection=frame_selection_params(settings), engine_version=ENGINE_VERSION,
    )


def with_fresh_worker(settings: RunSettings) -> RunSettings:
    """Deployments store parameters once: give every flow run its own worker id (unless set by env)."""
    return settings if env_value("PIXELREFER_WORKER_ID") else settings.replace(worker_id=default_worker_id())


def begin_run(settings: RunSettings, kind: str):
    """Open the store, record the run and its prompts in the catalog: (store, prompts, run_id)."""
    prompts = load_prompts(settings.prompts_file) if settings.prompts_file else list(DEFAULT_PROMPTS)
    store = open_store(settings)
    run_id = store.catalog.start_run(kind, settings.as_params())
    for p in prompts:
        store.catalog.upsert_prompt(p.id, p.text, p.task)
    return store, prompts, run_id


@flow(name="process-archive", log_prints=False)
def process_archive(settings: RunSettings) -> dict:
    """Process every video of `settings.archive` into `settings.store`; returns the run summary as a dict."""
    settings = with_fresh_worker(settings)
    logger = get_run_logger()
    started = time.perf_counter()
    store, prompts, run_id = begin_run(settings, "archive")
    summary = RunSummary(run_id=run_id, kind="archive")
    status = "failed"
    try:
        sources = discover_task(settings)
        progress(f"found {len(sources)} video file(s) under {settings.archive}"
                 + ("" if sources else f" (looked for {', '.join(settings.extensions)}): nothing to do"))
        ingested = []
        for i, source in enumerate(sources, 1):
            state = ingest_task(settings, source, return_state=True)
            outcome = _result_or_failure(state, source, "ingest")
            ingested.append(outcome)
            progress(f"[{i}/{len(sources)}] ingest {source.uri}: {outcome.status}"
                     + (f" ({outcome.error})" if outcome.error else ""))

        from flows.runtime import get_segmenter

        usable = [v for v in ingested if v.usable]
        tracked = []
        if usable:
            segmenter_id = get_segmenter(settings).segmenter_id
            config = tracker_config(settings)
            setup = tracking_setup(config, segmenter_id)
            seeds = load_seeds(settings.seeds_file) if settings.seeds_file else []
            for i, video in enumerate(usable, 1):
                own = seeds_for_video(seeds, video.uri)
                vsetup = tracking_setup(config, segmenter_id, own, video.fps) if own else setup
                state = track_task(settings, video, vsetup, segmenter_id, return_state=True)
                outcome = _track_result(state, video, vsetup.track_key)
                tracked.append(outcome)
                progress(f"[{i}/{len(usable)}] track {video.uri}: {outcome.status}, {outcome.n_objects} object(s)"
                         + (f" in {outcome.seconds:.1f} s" if outcome.status == "done" else "")
                         + (f" ({outcome.error})" if outcome.error else ""))

        targets = [DescribeTarget(t.video_id, t.track_key, t.uri, t.local_path)
                   for t in tracked if t.status in ("done", "skipped")]
        dsetup = describe_setup(settings)
        todo, described = plan_units(store, targets, prompts, dsetup)
        if todo:
            progress(f"describing: {len(todo)} unit(s) (videos x prompts) with {dsetup.model_id}")
            described += run_describe(settings, todo, dsetup.model_id, run_id)
        elif targets:
            progress("describe: every unit already done")
        refresh_views_task(settings)
        status = "ok"
    finally:
        summary.seconds = time.perf_counter() - started
        if status == "ok":
            summarize(summary, ingested, tracked, described)
        store.catalog.finish_run(run_id, status, summary.as_dict())
    _publish(summary, logger)
    return summary.as_dict()


def run_describe(settings: RunSettings, todo, model_id: str, run_id: str):
    """Run the describe task; when it fails for good, its units come back as failed outcomes (recorded
    in the catalog as retryable by the stage), so the views are still refreshed and the run reported."""
    from flows.stages.outcomes import DescribeOutcome

    state = describe_task(settings, todo, model_id, run_id, return_state=True)
    if state.is_completed():
        return state.result()
    exc = state.result(raise_on_failure=False)
    reason = f"{type(exc).__name__}: {exc}"
    progress(f"describe failed: {reason}")
    return [DescribeOutcome(u.target.video_id, u.describe_key, u.prompt.id, "failed", error=reason) for u in todo]


def _result_or_failure(state, source, stage):
    from flows.stages.outcomes import IngestOutcome

    if state.is_completed():
        return state.result()
    exc = state.result(raise_on_failure=False)
    return IngestOutcome(source.uri, source.local_path, "failed", error=f"{type(exc).__name__}: {exc}")


def _track_result(state, video, track_key):
    from flows.stages.outcomes import TrackOutcome

    if state.is_completed():
        return state.result()
    exc = state.result(raise_on_failure=False)
    return TrackOutcome(video.video_id, video.uri, video.local_path, track_key, "failed",
                        error=f"{type(exc).__name__}: {exc}")


def _publish(summary: RunSummary, logger) -> None:
    try:
        create_markdown_artifact(summary.markdown(), key=f"pixelrefer-{summary.kind}-run",
                                 description=f"PixelRefer {summary.kind} run {summary.run_id}")
    except Exception as exc:  # an artifact is a convenience: never fail a finished run over it
        logger.warning("could not create the run artifact: %s", exc)
    logger.info("%s", summary.text())
