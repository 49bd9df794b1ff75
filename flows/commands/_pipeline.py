"""Running a pipeline run from the command line: check, plan, then (only if work is left) Prefect.

1. Inputs are checked before anything else (settings, prompt and seed files, the store): exit 2.
2. The run is planned cheaply (flows.plan). When every unit is already done, the run is recorded and
   summarised without starting Prefect or loading a model (a no-op re-run takes about a second).
3. Otherwise a temporary Prefect server starts (unless PREFECT_API_URL names one) while the run checks
   what its work needs: the device, and that the model and SAM 2 checkpoints can be had. A run that
   cannot work stops here with exit 2 and one line, before any unit is touched.
4. The flow runs. Exit 0: every unit that could be done was done (bad videos are listed in the summary).
   A failure that would repeat on every video (the model cannot load, the device is missing) stops the
   run with exit 1; Ctrl-C stops it with exit 130.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flows.commands._common import fail, usage_errors

if TYPE_CHECKING:
    from flows.plan import ArchivePlan
    from flows.settings import RunSettings
    from flows.summary import RunSummary

__all__ = ["EXIT_ABORTED", "EXIT_INTERRUPTED", "preflight", "run_pipeline"]

log = logging.getLogger(__name__)
EXIT_ABORTED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def preflight(settings: RunSettings, needs_tracking: bool = True, needs_model: bool = True) -> None:
    """Raise a usage error (SettingsError / ModelLoadError) when the run's work cannot be done here."""
    from flows.settings import SettingsError

    if settings.device != "cpu":
        import torch

        if not torch.cuda.is_available():
            raise SettingsError(f"device: {settings.device} was asked for but this machine has no usable CUDA "
                                f"device (torch {torch.__version__}); use --device cpu")
        index = int(settings.device.split(":", 1)[1]) if ":" in settings.device else 0
        if index >= torch.cuda.device_count():
            raise SettingsError(f"device: {settings.device} does not exist ({torch.cuda.device_count()} CUDA "
                                "device(s) here)")
    kind = settings.resolved_segmenter
    if needs_tracking and (kind == "sam2" or (kind == "sam3" and settings.sam2 and
                                              (settings.propagator == "sam2" or settings.discover == "both"))):
        from pixelrefer_core.tracking.sam2_segmenter import resolve_checkpoint as resolve_sam2

        resolve_sam2(settings.sam2, settings.profile)  # downloads or finds it; ModelLoadError if not
    if needs_tracking and kind == "sam3" and settings.resolved_sam3 and not os.path.isdir(settings.resolved_sam3):
        _hub_snapshot(settings.resolved_sam3, "SAM 3 checkpoint")
    if needs_model and settings.model:
        from pixelrefer_core.checkpoints import checkpoint_model_type, resolve_checkpoint

        # The weights too, and which variant it is: ModelLoadError (exit 2) when either cannot be had.
        checkpoint_model_type(resolve_checkpoint(settings.model, settings.model_revision).path)


def _hub_snapshot(repo_id: str, what: str) -> str:
    """The local folder of a hub checkpoint (downloaded into the HF cache if needed); ModelLoadError if not."""
    from huggingface_hub import snapshot_download

    from pixelrefer_core.errors import ModelLoadError

    try:
        return str(snapshot_download(repo_id=repo_id))
    except Exception as exc:  # offline, unknown repo, gated without a token
        raise ModelLoadError(f"{what} {repo_id!r}: not a local folder and the hub download failed: "
                             f"{' '.join(str(exc).split())[:200]}") from exc


def _noop(settings: RunSettings, plan: ArchivePlan) -> RunSummary:
    """Record and summarise a run whose every unit is already done."""
    from flows.plan import mark_duplicates
    from flows.run_context import record_requests, run_context
    from flows.summary import Failure, summarize

    assert plan.track is not None and plan.describe is not None
    with run_context(settings, "archive", publish=False) as ctx:
        ingested = mark_duplicates(plan.ingest.settled)
        record_requests(ctx, ingested, plan.track.settled)
        summarize(ctx.summary, ingested, plan.track.settled, plan.describe.settled)
        ctx.summary.failures[:0] = [Failure(who=e.uri, stage="discover", reason=e.reason)
                                    for e in plan.discovery.skipped]
        ctx.summary.notes += [f"seed for {s.video!r} matches no video of the archive" for s in plan.unmatched_seeds]
        ctx.store.refresh_views()
    return ctx.summary


def run_pipeline(command: str, settings: RunSettings, kind: str) -> int:
    """Plan, check and run an archive ('archive') or describe ('describe') run; returns the exit code."""
    from flows.progress import progress

    needs_tracking = needs_model = True
    if kind == "archive":
        from flows.plan import load_run_prompts, plan_archive
        from flows.run_context import open_store

        try:
            plan = plan_archive(settings, open_store(settings), load_run_prompts(settings))
        except usage_errors() as exc:
            return fail(command, exc)
        if not plan.work_left:
            progress(f"nothing to do: every unit of the {len(plan.discovery.sources)} video file(s) is done")
            print(_noop(settings, plan).text())
            return 0
        needs_tracking = bool(plan.ingest.todo or (plan.track and plan.track.todo))
        needs_model = settings.describe

    def load_flow() -> Callable[[RunSettings], RunSummary]:
        preflight(settings, needs_tracking=needs_tracking, needs_model=needs_model)
        if kind == "archive":
            from flows.archive import process_archive

            return process_archive
        from flows.describe import describe_objects

        return describe_objects

    return _run_flow(command, settings, load_flow)


class _Interrupts:
    """Remembers a Ctrl-C while the run is on: Prefect may turn the KeyboardInterrupt raised inside a task
    into another exception (a crashed task or flow run), but the exit code must still say "interrupted"."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def __enter__(self) -> _Interrupts:
        self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _run_flow(command: str, settings: RunSettings, load_flow: Callable[[], Callable[[RunSettings], RunSummary]]) -> int:
    from flows.local_server import local_prefect_server

    loaded: list[Callable[[RunSettings], RunSummary]] = []
    interrupts = _Interrupts()
    try:
        with interrupts, local_prefect_server(while_starting=lambda: loaded.append(load_flow())):
            summary = loaded[0](settings)
    except BaseException as exc:
        if interrupts.seen or isinstance(exc, KeyboardInterrupt):
            print(f"pixelrefer {command}: interrupted; finished units are kept, a re-run resumes", file=sys.stderr)
            return EXIT_INTERRUPTED
        return _failure(command, exc)
    print(summary.text())
    return 0


def _failure(command: str, exc: BaseException) -> int:
    """The exit code and one line for a run that ended with `exc` (the traceback is for -v)."""
    from flows.phases import RunAborted

    if isinstance(exc, usage_errors()):
        return fail(command, exc, code=EXIT_USAGE)
    if isinstance(exc, RunAborted):
        return fail(command, f"the run stopped: {exc}", code=EXIT_ABORTED)
    if not isinstance(exc, Exception):
        raise exc  # SystemExit and the like are not failures of the run
    log.debug("run failed", exc_info=exc)
    return fail(command, f"the run failed: {type(exc).__name__}: {exc}", code=EXIT_ABORTED)
