"""Typed records the stages return (small, picklable: Prefect persists them as task results)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DescribeOutcome", "IngestOutcome", "TrackOutcome"]

# status values: 'done' (work done now), 'skipped' (done before with the same key), 'busy' (another
# worker holds the claim), 'failed' (error recorded in the catalog; `previously` when recorded by an
# earlier run and not retried because it is deterministic).


@dataclass(frozen=True)
class IngestOutcome:
    """One video after ingest. Probe fields are None when the video could not be read."""

    uri: str
    local_path: str
    status: str
    video_id: str | None = None
    fps: float | None = None
    num_frames: int | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    error: str | None = None
    previously: bool = False

    @property
    def usable(self) -> bool:
        return self.status in ("done", "skipped") and self.video_id is not None


@dataclass(frozen=True)
class TrackOutcome:
    """One video x track_key after tracking."""

    video_id: str
    uri: str
    local_path: str
    track_key: str
    status: str
    n_objects: int = 0
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class DescribeOutcome:
    """One video x describe_key after describing."""

    video_id: str
    describe_key: str
    prompt_id: str
    status: str
    n_rows: int = 0
    error: str | None = None
