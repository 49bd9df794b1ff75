"""The index phase of the pipeline flows: right after describe, embed every description the run described
(or found described) that has no vector from the run's embedder yet, so a run leaves them searchable.

`run_embedder(settings, store)` decides the embedder and builds it before any work (a missing model or an
unknown embedder stops the run at its start, not after hours of describing); `run_index` runs the index
task over the describe outcomes and records what it did in the run summary.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows import runtime
from flows.progress import progress
from flows.run_context import RunContext, open_store
from flows.settings import RunSettings, SettingsError
from flows.stages.index import IndexReport, index_descriptions
from flows.stages.outcomes import DescribeOutcome, Status
from flows.stages.units import error_text
from flows.summary import RunSummary
from flows.tasks import transient_only
from flows.vectors import get_embedder, resolve_embedder_ref
from pixelrefer_core.embedding import EmbedderError
from storage import Store

__all__ = ["IndexPhase", "add_index_summary", "index_task", "run_embedder", "run_index"]

log = logging.getLogger(__name__)


def run_embedder(settings: RunSettings, store: Store) -> str:
    """The embedder reference of this run (settings.embedder, else the store's, else wordllama), built now:
    SettingsError (a usage error: exit 2) when it cannot be, ModelLoadError when its model is missing."""
    ref = resolve_embedder_ref(store, settings.embedder)
    try:
        get_embedder(ref, settings.device)
    except EmbedderError as exc:
        raise SettingsError(f"embedder: {exc}") from exc
    return ref


@task(name="index", retries=1, retry_delay_seconds=2, retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def index_task(settings: RunSettings, described: list[tuple[str, str]], ref: str) -> IndexReport:
    store = open_store(settings)
    slot: Any = runtime.gpu_slot(settings) if settings.device != "cpu" else contextlib.nullcontext()
    with slot:
        return index_descriptions(store, described, ref, worker_id=settings.worker_id, device=settings.device,
                                  lease_s=settings.claim_lease_s, progress=progress)


@dataclass
class IndexPhase:
    """The index phase's report, or why it failed (the descriptions are kept; `pixelrefer index` redoes it)."""

    report: IndexReport | None = None
    error: str | None = None


def run_index(ctx: RunContext, described: Sequence[DescribeOutcome], ref: str) -> IndexPhase:
    units = [(d.video_id, d.describe_key) for d in described if d.status in (Status.DONE, Status.SKIPPED)]
    if not units:
        return IndexPhase()
    state = index_task(ctx.settings, units, ref, return_state=True)
    if state.is_completed():
        report: IndexReport = state.result()
        progress(report.line())
        return IndexPhase(report)
    exc = state.result(raise_on_failure=False)
    reason = error_text(exc) if isinstance(exc, BaseException) else f"the index task ended {state.type}"
    progress(f"index failed: {reason}")
    return IndexPhase(error=reason)


def add_index_summary(summary: RunSummary, phase: IndexPhase, store: str) -> None:
    if phase.error is not None:
        summary.fail("search index", "index", f"{phase.error} (the descriptions are kept: fix it and run "
                     f"pixelrefer index --store {store})")
        return
    if phase.report is not None:
        summary.notes.append(phase.report.line())
        for o in phase.report.outcomes:
            if o.status == Status.FAILED:
                summary.fail(o.video_id[:12], "index", f"descriptions {o.describe_key}: {o.error or ''}")
