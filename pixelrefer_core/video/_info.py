"""`VideoInfo`, what `probe` learns about a file, and the failure a backend reports to the chooser."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns about one video file.

    - num_frames: frames that can be used (indices 0..num_frames-1); for a partial file, its readable
      prefix. duration_s = num_frames / fps (the span those frames cover).
    - decoded_frames: frames that decode. The PyAV backend counts them by decoding the whole file; the
      decord backend decodes the first and the last frame and trusts the index for those between.
      Equal to num_frames.
    - backend: 'decord' | 'pyav', the reader every later call on this file uses.
    - partial_reason: None for a complete file; else why decoding stops early (the frames after
      num_frames are lost). declared_frames: what the container's index claims (0: unknown).
    """

    path: str
    fps: float
    num_frames: int
    duration_s: float
    width: int
    height: int
    decoded_frames: int
    backend: str
    partial_reason: str | None = None
    declared_frames: int = 0

    @property
    def partial(self) -> bool:
        return self.partial_reason is not None


class BackendFailure(Exception):
    """A backend cannot read a file; `what` says which step failed, `cause` the library's error."""

    def __init__(self, what: str, cause: BaseException | None = None):
        self.what = what
        self.cause = cause
        super().__init__(what if cause is None else f"{what}: {cause}")


__all__ = ["BackendFailure", "VideoInfo"]
