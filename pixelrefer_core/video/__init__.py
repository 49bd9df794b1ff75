"""Video reading: probe, fingerprint, sampling, chunked iteration and exact timestamps, on two backends.

One interface, the backend chosen per file by `probe`:
- decord (`_decord`): random access and batched decoding; taken when the file's first and last frames
  decode and its index declares no more frames than decord sees.
- PyAV (`_pyav`): sequential decoding; taken for what decord cannot read but PyAV can, such as tiny
  frame sizes (16x16) and partial files.

Frames are RGB HxWx3 uint8 arrays. Frame indices are decode-order positions 0..num_frames-1 (both
backends count the same way). Timestamps are the presentation time of each frame's start in seconds from
the container's pts, shifted so the first frame is at 0; where the container gives no usable pts
(non-monotonic or missing) they fall back to `index / fps`. For constant-rate files (all files
`synthetic.write_video` makes) the two agree, and both backends give the same values.

Partial files: a video whose tail does not decode (a truncated download, a cut copy) is not rejected:
`probe` returns `VideoInfo` with `partial_reason` set and `num_frames` = the frames that decode, and
iteration yields those and ends normally. A file with no decodable frame raises the most specific
`VideoError` (VideoNotFoundError, EmptyVideoError, NotAVideoError, TruncatedVideoError with
frames_readable=0 for an mp4 cut before its index, CorruptVideoError).

Memory: iteration holds one chunk of sampled frames at a time on both backends. Decoder chatter of the C
libraries never reaches the terminal (see `_quiet`; `set_decoder_logging(True)` shows it).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np

from pixelrefer_core.errors import (
    CorruptVideoError,
    NotAVideoError,
    TruncatedVideoError,
    VideoError,
    VideoNotFoundError,
)
from pixelrefer_core.video import _decord, _pyav
from pixelrefer_core.video._files import check_file, looks_like_container, mp4_missing_index, short
from pixelrefer_core.video._info import BackendFailure, VideoInfo
from pixelrefer_core.video._quiet import set_decoder_logging

log = logging.getLogger(__name__)

Backend = Literal["decord", "pyav"]
BACKENDS: tuple[str, ...] = ("decord", "pyav")


def _failure_text(f: BackendFailure) -> str:
    return f.what if f.cause is None else f"{f.what}: {short(f.cause)}"


def _no_frame_error(path: str, failures: list[BackendFailure]) -> VideoError:
    """The most specific error for a file from which no backend decodes a frame."""
    detail = "; ".join(_failure_text(f) for f in failures)
    if not looks_like_container(path):
        return NotAVideoError(path, f"not a recognised video container ({detail})")
    if mp4_missing_index(path):
        return TruncatedVideoError(
            path,
            "the mp4 index (moov box) is missing: the file was cut before its end "
            "(an mp4 written without faststart keeps its index at the end); no frame can be read",
            frames_readable=0,
        )
    return CorruptVideoError(path, f"container recognised but no frame decodes ({detail})")


def probe(path: str | os.PathLike[str], backend: Backend | None = None) -> VideoInfo:
    """Open `path`, choose its backend (or use `backend`) and describe it; see `VideoInfo`.

    A partial file returns a VideoInfo with `partial_reason` (logged at INFO). Raises a VideoError
    subclass when no frame can be read.
    """
    path = str(path)
    check_file(path)
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}: use one of {BACKENDS}")
    failures: list[BackendFailure] = []
    if backend in (None, "decord"):
        try:
            return _decord.probe(path)
        except BackendFailure as f:
            failures.append(f)
            log.debug("%s: %s; trying PyAV", path, _failure_text(f))
    try:
        info = _pyav.probe(path)
    except BackendFailure as f:
        failures.append(f)
        raise _no_frame_error(path, failures) from f.cause
    if info.partial_reason is not None:
        log.debug("%s: partial video, %d readable frames (%s)", path, info.num_frames, info.partial_reason)
    return info


def fingerprint(path: str | os.PathLike[str]) -> str:
    """Streaming sha256 (hex) of the file's bytes; this is the `video_id`."""
    path = str(path)
    if not os.path.isfile(path):
        raise VideoNotFoundError(path, "file does not exist")
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sample_indices(info: VideoInfo, target_fps: float | None) -> list[int]:
    """Frame indices sampled at `target_fps` (None or >= the video's fps: every frame).

    Sample k is the frame whose start is nearest to time k / target_fps: index round(k * fps / target_fps).
    """
    if target_fps is None or target_fps >= info.fps:
        return list(range(info.num_frames))
    if target_fps <= 0:
        raise ValueError(f"target_fps must be > 0, got {target_fps}")
    step = info.fps / target_fps
    out: list[int] = []
    k = 0
    while True:
        idx = int(math.floor(k * step + 0.5))
        if idx >= info.num_frames:
            break
        if not out or idx != out[-1]:
            out.append(idx)
        k += 1
    return out


def iter_frame_chunks(
    path: str | os.PathLike[str],
    target_fps: float | None = None,
    chunk_size: int = 16,
    backend: Backend | None = None,
    info: VideoInfo | None = None,
) -> Iterator[list[tuple[int, float, np.ndarray]]]:
    """Yield lists of up to `chunk_size` sampled `(frame_idx, t_seconds, rgb)`; one chunk in memory.

    A partial file yields its readable frames and ends. `info` (a VideoInfo `probe` returned for this
    path) saves probing again. TruncatedVideoError is raised, after the frames that did decode, only
    when a frame the probe found readable does not decode (the file changed, or a damaged middle).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    info = info if info is not None else probe(path, backend)
    indices = sample_indices(info, target_fps)
    reader = _decord if info.backend == "decord" else _pyav
    yield from reader.iter_chunks(info, indices, chunk_size)


def iter_frames(
    path: str | os.PathLike[str],
    target_fps: float | None = None,
    chunk_size: int = 16,
    backend: Backend | None = None,
    info: VideoInfo | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Flat version of `iter_frame_chunks`: `(frame_idx, t_seconds, rgb)` one by one."""
    for chunk in iter_frame_chunks(path, target_fps=target_fps, chunk_size=chunk_size, backend=backend, info=info):
        yield from chunk


def read_frames(
    path: str | os.PathLike[str],
    frame_indices: Sequence[int],
    backend: Backend | None = None,
    info: VideoInfo | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """Decode the given frame indices (any order, repeats allowed) -> (RGB frames, timestamps in s).

    Indices must lie in 0..num_frames-1 (IndexError otherwise; for a partial file, its readable frames).
    """
    info = info if info is not None else probe(path, backend)
    indices = [int(i) for i in frame_indices]
    bad = [i for i in indices if not 0 <= i < info.num_frames]
    if bad:
        raise IndexError(f"{info.path}: frame indices {bad[:5]} outside 0..{info.num_frames - 1}")
    if not indices:
        return [], []
    reader = _decord if info.backend == "decord" else _pyav
    return reader.read(info, indices)


__all__ = [
    "BACKENDS",
    "VideoInfo",
    "fingerprint",
    "iter_frame_chunks",
    "iter_frames",
    "probe",
    "read_frames",
    "sample_indices",
    "set_decoder_logging",
]
