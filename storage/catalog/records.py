"""Typed rows of the catalog (what its methods return). Times are naive UTC datetimes."""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_LEASE_S",
    "RUN_LEASE_S",
    "QuarantineRecord",
    "RequestRecord",
    "RunRecord",
    "UnitRecord",
    "VideoPathRecord",
    "now_utc",
    "process_is_gone",
]

# A claim whose holder has not renewed it (Catalog.renew_claims) for this long may be taken over.
DEFAULT_LEASE_S = 120.0
# A 'running' run with no heartbeat (Catalog.heartbeat_run) for this long is reported as crashed.
RUN_LEASE_S = 600.0


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _age_s(since: dt.datetime | None, now: dt.datetime) -> float | None:
    return None if since is None else max(0.0, (now - since).total_seconds())


def process_is_gone(host: str | None, pid: int | None) -> bool:
    """True when (host, pid) names a process of THIS host that no longer exists (other hosts: unknown)."""
    if not host or pid is None or host != socket.gethostname() or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        return False
    return False


@dataclass(frozen=True)
class UnitRecord:
    """One row of `units`.

    `rows`: the primary table's row count recorded at mark_done (None: not recorded); `table_rows`:
    per-table counts when the stage writes several tables. `heartbeat_at`: when the holder of a running
    claim last renewed it. `age_s` / `heartbeat_age_s`: seconds since claimed_at / the last sign of life
    (heartbeat, else the claim), at the time the record was read.
    """

    stage: str
    video_id: str
    unit_key: str
    uri: str | None
    state: str
    attempts: int
    error: str | None
    retryable: bool
    worker_id: str | None
    claimed_at: dt.datetime | None
    updated_at: dt.datetime
    rows: int | None = None
    table_rows: dict[str, int] | None = None
    heartbeat_at: dt.datetime | None = None
    age_s: float | None = None
    heartbeat_age_s: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any], now: dt.datetime | None = None) -> UnitRecord:
        now = now or now_utc()
        values = {k: v for k, v in row.items() if k != "id"}
        alive = values.get("heartbeat_at") or values.get("claimed_at")
        return cls(**values, age_s=_age_s(values.get("claimed_at"), now), heartbeat_age_s=_age_s(alive, now))

    def is_stale(self, lease_s: float = DEFAULT_LEASE_S) -> bool:
        """A running claim whose holder has shown no sign of life for `lease_s` seconds."""
        return self.state == "running" and (self.heartbeat_age_s is None or self.heartbeat_age_s >= lease_s)


@dataclass(frozen=True)
class RunRecord:
    """One row of `runs`. `status` is what the run wrote ('running', 'ok', 'failed', ...).

    `effective_status`: `status`, except that a 'running' run whose process is gone (same host) or whose
    last heartbeat (else its start) is older than the run lease is 'crashed'. `age_s`: seconds since
    it started; `heartbeat_age_s`: since its last sign of life (both at the time the record was read).
    """

    id: str
    kind: str
    params: dict[str, Any]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    summary: dict[str, Any] | None
    host: str | None = None
    pid: int | None = None
    heartbeat_at: dt.datetime | None = None
    effective_status: str = ""
    age_s: float = 0.0
    heartbeat_age_s: float = 0.0

    @classmethod
    def from_row(cls, row: dict[str, Any], now: dt.datetime | None = None, lease_s: float = RUN_LEASE_S) -> RunRecord:
        now = now or now_utc()
        alive = row.get("heartbeat_at") or row["started_at"]
        since_alive = _age_s(alive, now) or 0.0
        status = row["status"]
        effective = status
        if status == "running" and (process_is_gone(row.get("host"), row.get("pid")) or since_alive >= lease_s):
            effective = "crashed"
        return cls(**row, effective_status=effective, age_s=_age_s(row["started_at"], now) or 0.0,
                   heartbeat_age_s=since_alive)

    @property
    def crashed(self) -> bool:
        return self.effective_status == "crashed"


@dataclass(frozen=True)
class RequestRecord:
    """The last time a run asked for a unit (`Catalog.record_request`)."""

    stage: str
    video_id: str
    unit_key: str
    run_id: str | None
    requested_at: dt.datetime
    n_requests: int


@dataclass(frozen=True)
class VideoPathRecord:
    """One path a video's bytes were found at."""

    video_id: str
    uri: str
    size_bytes: int | None
    first_seen: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True)
class QuarantineRecord:
    """A file set aside by `Store.quarantine`; `path` is relative to the store root."""

    id: int
    table_name: str
    video_id: str
    unit_key: str
    path: str
    reason: str
    quarantined_at: dt.datetime
