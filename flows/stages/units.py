"""One way to do a unit of work: decide whether it is done, claim it, do it, record the outcome.

A unit is (stage, video_id, key) and writes one file per table it names (e.g. track -> `object_frames` and
`objects`). "Already done?" is decided here and only here, from the catalog *and* the files: a unit the
catalog records as done whose files are missing or damaged is set aside and redone, so the store heals
on the next run. Prefect's result cache is deliberately not used for this: the catalog is shared by every
worker of a store (several processes and machines), it knows about failures, and it is checked against
the files, which a per-server result cache cannot see.

Failures: `PERMANENT_ERRORS` (a bad video, prompt or model input: the same input fails the same way) are recorded as
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
from pixelrefer_core.errors import InputError, ModelLoadError, PromptError, VideoError
from storage import Store
from storage.catalog import DEFAULT_LEASE_S
from storage.layout import STAGE_TABLES

__all__ = ["PERMANENT_ERRORS", "SYSTEMIC_ERRORS", "UnitRef", "UnitResult", "claim_ref", "error_text", "finish", "prior_status",
           "record_failure", "run_unit"]

log = logging.getLogger(__name__)
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (VideoError, PromptError, InputError)
SYSTEMIC_ERRORS: tuple[type[BaseException], ...] = (ModelLoadError,)


@dataclass(frozen=True)
class UnitRef:
    """A unit of work; it writes one file named `key` in each of its stage's tables (STAGE_TABLES)."""

    stage: str
    video_id: str
    key: str
    uri: str | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        return STAGE_TABLES[self.stage]


@dataclass(frozen=True)
class UnitResult:
    """status, and the error text when FAILED (`previously`: recorded by an earlier run, not retried)."""

    status: Status
    error: str | None = None
    previously: bool = False


def error_text(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, VideoError) else str(exc)
    return f"{type(exc).__name__}: {reason}"


def _heal(store: Store, ref: UnitRef) -> bool:
    """True when every file of a unit recorded as done is intact (present, readable, its table's schema,
    the row count the catalog recorded). Otherwise damaged files are set aside (quarantined), the unit
    is re-queued, and False is returned: the unit is redone."""
    damaged = [state for table in ref.tables
               if not (state := store.check_unit(table, ref.video_id, ref.key)).ok]
    for state in damaged:
        log.warning("%s unit %s of video %s was done but its %s file is %s (%s): redoing it", ref.stage,
                    ref.key, ref.video_id[:12], state.table, state.state.replace("_", " "), state.reason)
        if state.state == "missing":
            store.catalog.requeue_unit(ref.stage, ref.video_id, ref.key, reason=f"{state.table} file missing")
        else:
            store.quarantine(state.table, ref.video_id, ref.key, state.reason or state.state, requeue=True)
    return not damaged


def prior_status(store: Store, ref: UnitRef) -> UnitResult | None:
    """SKIPPED when done with intact files, FAILED (previously) when it failed for good, None when to do."""
    record = store.catalog.unit(ref.stage, ref.video_id, ref.key)
    if record is None:
        return None
    if record.state == "done":
        return UnitResult(Status.SKIPPED) if _heal(store, ref) else None
    if record.state == "failed" and not record.retryable:
        return UnitResult(Status.FAILED, error=record.error, previously=True)
    return None


def claim_ref(store: Store, ref: UnitRef, worker_id: str, lease_s: float = DEFAULT_LEASE_S) -> bool:
    """Claim the unit for `worker_id` (atomic across workers and machines; see flows.stages.claims)."""
    return claim(store.catalog, ref.stage, ref.video_id, ref.key, worker_id, uri=ref.uri, lease_s=lease_s)


Rows = int | dict[str, int]  # rows written: one count, or one per table of the unit


def finish(store: Store, ref: UnitRef, rows: Rows | None = None) -> None:
    """Mark the unit done with the row counts of its files (what `verify` and healing check against)."""
    store.catalog.mark_done(ref.stage, ref.video_id, ref.key, rows=rows)


def record_failure(store: Store, ref: UnitRef, exc: BaseException) -> str:
    """Record `exc` for the unit (retryable unless permanent); returns the error text."""
    reason = error_text(exc)
    store.catalog.mark_failed(ref.stage, ref.video_id, ref.key, reason,
                              retryable=not isinstance(exc, PERMANENT_ERRORS))
    return reason


def run_unit(store: Store, ref: UnitRef, worker_id: str, work: Callable[[], Rows],
             lease_s: float = DEFAULT_LEASE_S) -> UnitResult:
    """The whole sequence for one unit: skip if done, claim, `work()` (writes the files, returns the row
    count), mark done; a permanent failure is recorded and returned, any other is recorded and raised."""
    prior = prior_status(store, ref)
    if prior is not None:
        return prior
    if not claim_ref(store, ref, worker_id, lease_s):
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
