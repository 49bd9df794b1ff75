"""Typed records the stages return (small and picklable: Prefect moves them between task runs)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["DescribeOutcome", "IngestOutcome", "Status", "TrackOutcome"]


class Status(StrEnum):
    """What happened to one unit of work in this run."""

    DONE = "done"  # work done now
    SKIPPED = "skipped"  # done before with the same key (and its files are intact)
    BUSY = "busy"  # another live worker holds the claim
    FAILED = "failed"  # error recorded in the catalog


@dataclass(frozen=True)
class IngestOutcome:
    """One video after ingest. Probe fields are None when the video could not be read.

    `previously`: the failure was recorded by an earlier run and is not retried (same bytes, same error).
    `partial_reason`: set when only the first `decoded_frames` frames decode (the rest is used as is).
    `duplicate_of`: another path of this run with the same bytes (the video is ingested, tracked and
    described once, under the first path).
    """

    uri: str
    local_path: str
    status: Status
    video_id: str | None = None
    size_bytes: int | None = None
    fps: float | None = None
    num_frames: int | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    decoded_frames: int | None = None
    partial_reason: str | None = None
    error: str | None = None
    previously: bool = False
    duplicate_of: str | None = None

    @property
    def usable(self) -> bool:
        return self.status in (Status.DONE, Status.SKIPPED) and self.video_id is not None and not self.duplicate_of


@dataclass(frozen=True)
class TrackOutcome:
    """One video x track_key after tracking."""

    video_id: str
    uri: str
    local_path: str
    track_key: str
    status: Status
    n_objects: int = 0
    error: str | None = None
    seconds: float = 0.0
    skipped_seeds: tuple[str, ...] = ()


@dataclass(frozen=True)
class DescribeOutcome:
    """One video x describe_key after describing."""

    video_id: str
    describe_key: str
    prompt_id: str
    status: Status
    n_rows: int = 0
    error: str | None = None
