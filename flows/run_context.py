"""What every run shares, from start to end: one place for the prologue and epilogue of both flows.

`run_context(settings, kind)` gives each run its own worker id, opens the store, records the run (with
its host and pid, so `status` can tell a crashed run) and its prompts in the catalog, heartbeats while
the run lasts (the run's own record and every claim the worker holds, so other workers never take over
live work but take over a dead worker's within a lease), and on exit records how the run ended (ok /
failed / interrupted) with its summary and, inside a Prefect flow run, publishes the summary as a
markdown artifact.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from flows.plan import load_run_prompts
from flows.prompts import PromptSpec
from flows.settings import RunSettings, default_worker_id, env_settings
from flows.stages.outcomes import IngestOutcome, Status, TrackOutcome
from flows.stages.track import TRACK_STAGE
from flows.summary import RunSummary
from storage import Store

__all__ = ["Heartbeat", "RunContext", "open_store", "record_requests", "run_context", "with_fresh_worker"]

log = logging.getLogger(__name__)
_stores: dict[tuple[str, str | None], Store] = {}
_stores_lock = threading.Lock()


def open_store(settings: RunSettings) -> Store:
    """The store of `settings`, opened once per process (every task run of a worker shares it)."""
    key = (settings.store, settings.resolved_catalog_url)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = Store.open(settings.store, catalog_url=settings.resolved_catalog_url)
        return _stores[key]


def with_fresh_worker(settings: RunSettings) -> RunSettings:
    """Deployments store parameters once: give every flow run its own worker id (unless set by env)."""
    return settings if env_settings().worker_id else settings.replace(worker_id=default_worker_id())


class Heartbeat:
    """A daemon thread renewing the run's record and the worker's claims every `every_s` seconds."""

    def __init__(self, store: Store, run_id: str, worker_id: str, every_s: float):
        self.store, self.run_id, self.worker_id, self.every_s = store, run_id, worker_id, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="pixelrefer-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.store.catalog.renew_claims(self.worker_id)
                self.store.catalog.heartbeat_run(self.run_id)
            except Exception as exc:  # a missed beat is not fatal: the lease allows for several
                log.warning("heartbeat failed (%s); retrying in %.0f s", exc, self.every_s)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class RunContext:
    settings: RunSettings
    store: Store
    prompts: list[PromptSpec]
    run_id: str
    summary: RunSummary
    started: float
    report_index: str | None = None  # the report the run refreshed (linked from its Prefect artifact)


@contextmanager
def run_context(settings: RunSettings, kind: str, publish: bool = True) -> Iterator[RunContext]:
    """Record a run of `kind` around the with-block (see module docstring). `publish=False` outside a
    Prefect flow run (a run with nothing to do is recorded without starting Prefect)."""
    settings = with_fresh_worker(settings)
    prompts = load_run_prompts(settings)
    store = open_store(settings)
    store.require_writable(f"a {kind} run")
    run_id = store.catalog.start_run(kind, settings.as_params(), host=socket.gethostname(), pid=os.getpid())
    for p in prompts:
        store.catalog.upsert_prompt(p.id, p.text, p.task)
    ctx = RunContext(settings, store, prompts, run_id, RunSummary(run_id=run_id, kind=kind), time.perf_counter())
    status = "failed"
    try:
        with Heartbeat(store, run_id, settings.worker_id, every_s=settings.claim_lease_s / 4):
            yield ctx
        status = "ok"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        ctx.summary.seconds = time.perf_counter() - ctx.started
        store.catalog.finish_run(run_id, status, ctx.summary.model_dump(mode="json"))
    if publish:
        _publish(ctx.summary, ctx.report_index)


def record_requests(ctx: RunContext, ingested: Sequence[IngestOutcome], tracked: Sequence[TrackOutcome]) -> None:
    """What this run asked for: every path of every video (duplicates included), and the tracking it
    wants of each video, also when that was already done (the views' latest tracking is the one asked
    for last)."""
    for video in ingested:
        if video.video_id:
            ctx.store.catalog.record_video_path(video.video_id, video.uri, video.size_bytes)
    for t in tracked:
        if t.status != Status.BUSY:
            ctx.store.catalog.record_request(ctx.run_id, TRACK_STAGE, t.video_id, t.track_key)


def _publish(summary: RunSummary, report_index: str | None = None) -> None:
    from prefect import get_run_logger
    from prefect.artifacts import create_link_artifact, create_markdown_artifact

    logger = get_run_logger()
    markdown = summary.markdown()
    if report_index:
        markdown += f"\n\n[Open the report](file://{report_index})\n"
    try:
        create_markdown_artifact(markdown, key=f"pixelrefer-{summary.kind}-run",
                                 description=f"PixelRefer {summary.kind} run {summary.run_id}")
        if report_index:
            create_link_artifact(f"file://{report_index}", link_text="PixelRefer report",
                                 key=f"pixelrefer-{summary.kind}-report", description=f"report of run {summary.run_id}")
    except Exception as exc:  # an artifact is a convenience: never fail a finished run over it
        logger.warning("could not create the run artifact: %s", exc)
    logger.info("%s", summary.text())
