"""One way to do a unit of work: decide whether it is done, claim it, do it, record the outcome.

A unit is (stage, video_id, key) and writes one file per table it names (e.g. track -> `object_frames` and
`objects`). "Already done?" is decided here and only here, from the catalog *and* the files: a unit the
catalog records as done whose files are missing or damaged is set aside and redone, so the store heals
on the next run. Prefect's result cache is deliberately not used for this: the catalog is shared by every
worker of a store (several processes and machines), it knows about failures, and it is checked against
the files, which a per-server result cache cannot see.

Failures: `PERMANENT_ERRORS` (a bad video or prompt: the same input fails the same way) are recorded as
not retryable and returned as FAILED; any other error is recorded as retryable and re-raised, so the
task's retry policy (and the next run) can try again. `SYSTEMIC_ERRORS` (the model cannot load, the
device is missing) are about the run, not the unit: the unit stays retryable and the run stops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flows.stages.claims import claim
from flows.stages.outcomes import Status
from pixelrefer_core.errors import ModelLoadError, PromptError, VideoError
from storage import Store

__all__ = ["PERMANENT_ERRORS", "SYSTEMIC_ERRORS", "UnitRef", "UnitResult", "claim_ref", "error_text", "finish", "prior_status",
           "record_failure", "run_unit"]

log = logging.getLogger(__name__)
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (VideoError, PromptError)
SYSTEMIC_ERRORS: tuple[type[BaseException], ...] = (ModelLoadError,)


@dataclass(frozen=True)
class UnitRef:
    """A unit of work and the store tables it writes (one file each, named by `key`)."""

    stage: str
    video_id: str
    key: str
    tables: tuple[str, ...]
    uri: str | None = None


@dataclass(frozen=True)
class UnitResult:
    """status, and the error text when FAILED (`previously`: recorded by an earlier run, not retried)."""

    status: Status
    error: str | None = None
    previously: bool = False


def error_text(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, VideoError) else str(exc)
    return f"{type(exc).__name__}: {reason}"


def _damage(store: Store, ref: UnitRef) -> str | None:
    """Why the files of a unit recorded as done cannot be used (None: intact)."""
    for table in ref.tables:
        if not store.has_unit(table, ref.video_id, ref.key):
            return f"its {table} file is missing"
    return None


def prior_status(store: Store, ref: UnitRef) -> UnitResult | None:
    """SKIPPED when done with intact files, FAILED (previously) when it failed for good, None when to do."""
    record = store.catalog.unit(ref.stage, ref.video_id, ref.key)
    if record is None:
        return None
    if record.state == "done":
        damage = _damage(store, ref)
        if damage is None:
            return UnitResult(Status.SKIPPED)
        # Healing: the unit becomes a retryable failure, which the normal claim below takes.
        log.warning("%s unit %s/%s was done but %s: redoing it", ref.stage, ref.video_id[:12], ref.key, damage)
        store.catalog.mark_failed(ref.stage, ref.video_id, ref.key, f"redone: {damage}", retryable=True)
        return None
    if record.state == "failed" and not record.retryable:
        return UnitResult(Status.FAILED, error=record.error, previously=True)
    return None


def claim_ref(store: Store, ref: UnitRef, worker_id: str) -> bool:
    """Claim the unit for `worker_id` (atomic across workers and machines)."""
    return claim(store.catalog, ref.stage, ref.video_id, ref.key, worker_id, uri=ref.uri)


def finish(store: Store, ref: UnitRef, rows: int | None = None) -> None:
    store.catalog.mark_done(ref.stage, ref.video_id, ref.key)


def record_failure(store: Store, ref: UnitRef, exc: BaseException) -> str:
    """Record `exc` for the unit (retryable unless permanent); returns the error text."""
    reason = error_text(exc)
    store.catalog.mark_failed(ref.stage, ref.video_id, ref.key, reason,
                              retryable=not isinstance(exc, PERMANENT_ERRORS))
    return reason


def run_unit(store: Store, ref: UnitRef, worker_id: str, work: Callable[[], int]) -> UnitResult:
    """The whole sequence for one unit: skip if done, claim, `work()` (writes the files, returns the row
    count), mark done; a permanent failure is recorded and returned, any other is recorded and raised."""
    prior = prior_status(store, ref)
    if prior is not None:
        return prior
    if not claim_ref(store, ref, worker_id):
        return UnitResult(Status.BUSY)
    try:
        rows = work()
    except PERMANENT_ERRORS as exc:
        reason = record_failure(store, ref, exc)
        log.info("%s %s: %s", ref.stage, ref.uri or ref.video_id[:12], reason)  # the summary reports it
        return UnitResult(Status.FAILED, error=reason)
    except BaseException as exc:
        record_failure(store, ref, exc)
        raise
    finish(store, ref, rows)
    return UnitResult(Status.DONE)
