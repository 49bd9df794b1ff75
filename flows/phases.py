"""Running one phase of a pipeline run as Prefect task runs, with a progress line per unit: the steps both
flows share (each takes the todo list of a flows.plan Phase and returns the stages' outcomes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.states import State

from flows.plan import describe_setup
from flows.progress import progress
from flows.run_context import RunContext
from flows.stages.describe import DescribeUnit
from flows.stages.discover import VideoSource
from flows.stages.outcomes import DescribeOutcome, IngestOutcome, Status, TrackOutcome
from flows.stages.track import TrackingSetup
from flows.stages.units import SYSTEMIC_ERRORS, error_text
from flows.tasks import describe_task, ingest_task, track_task

__all__ = ["RunAborted", "run_describe", "run_ingest", "run_tracking"]


class RunAborted(RuntimeError):
    """A failure that would repeat for every unit (the model cannot load, the device is missing): the run
    stops instead of recording the same failure per video. The units stay retryable."""


def _error(state: State[Any]) -> BaseException:
    """The exception a failed task run ended with."""
    exc = state.result(raise_on_failure=False)
    return exc if isinstance(exc, BaseException) else RuntimeError(f"task run ended {state.type}: {exc!r}")


def _check_systemic(exc: BaseException, stage: str) -> None:
    if isinstance(exc, SYSTEMIC_ERRORS):
        raise RunAborted(f"{stage}: {error_text(exc)}") from exc


def run_ingest(ctx: RunContext, todo: Sequence[tuple[VideoSource, str | None]]) -> list[IngestOutcome]:
    out = []
    for i, (source, video_id) in enumerate(todo, 1):
        state = ingest_task(ctx.settings, source, video_id, return_state=True)
        if state.is_completed():
            outcome = state.result()
        else:
            outcome = IngestOutcome(source.uri, source.local_path, Status.FAILED, error=error_text(_error(state)))
        out.append(outcome)
        progress(f"[{i}/{len(todo)}] ingest {source.uri}: {outcome.status}"
                 + (f" ({outcome.error})" if outcome.error else ""))
    return out


def run_tracking(ctx: RunContext, todo: Sequence[tuple[IngestOutcome, TrackingSetup]]) -> list[TrackOutcome]:
    out = []
    for i, (video, setup) in enumerate(todo, 1):
        state = track_task(ctx.settings, video, setup, return_state=True)
        if state.is_completed():
            outcome = state.result()
        else:
            exc = _error(state)
            _check_systemic(exc, "track")
            outcome = TrackOutcome(video.video_id or "", video.uri, video.local_path, setup.track_key,
                                   Status.FAILED, error=error_text(exc))
        out.append(outcome)
        progress(f"[{i}/{len(todo)}] track {video.uri}: {outcome.status}, {outcome.n_objects} object(s)"
                 + (f" in {outcome.seconds:.1f} s" if outcome.status == Status.DONE else "")
                 + (f" ({outcome.error})" if outcome.error else ""))
    return out


def run_describe(ctx: RunContext, todo: Sequence[DescribeUnit]) -> list[DescribeOutcome]:
    """Run the describe task over `todo`; when it fails for good, its units come back as failed outcomes
    (recorded in the catalog as retryable by the stage), so the views are still refreshed and the run
    reported."""
    if not todo:
        return []
    setup = describe_setup(ctx.settings)
    assert setup is not None
    model_id = setup.model_id
    progress(f"describing: {len(todo)} unit(s) (videos x prompts) with {model_id}")
    state = describe_task(ctx.settings, list(todo), model_id, ctx.run_id, return_state=True)
    if state.is_completed():
        return state.result()
    exc = _error(state)
    _check_systemic(exc, "describe")
    reason = error_text(exc)
    progress(f"describe failed: {reason}")
    return [DescribeOutcome(u.target.video_id, u.describe_key, u.prompt.id, Status.FAILED, error=reason)
            for u in todo]
