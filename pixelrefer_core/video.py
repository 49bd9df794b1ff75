"""Decord-backed video reading: probe, fingerprint, sampling, chunked iteration, exact timestamps.

Frames are RGB HxWx3 uint8 arrays. Frame indices are decode-order positions 0..num_frames-1 as decord
counts them. Timestamps are the presentation time of each frame's start in seconds, read from the
container (decord's `get_frame_timestamp`, i.e. the frame's pts times the stream time base, shifted so
the first frame is at 0); where the container gives no usable pts (non-monotonic or missing) they fall
back to `index / fps`. For constant-rate files (all files `synthetic.write_video` makes) the two agree.

Memory: iteration decodes one chunk of sampled frames at a time with `get_batch`; the whole video is never
held. Failures become typed `VideoError`s that name the file and the reason; decord raises RuntimeError,
DECORDError or IndexError, and those never escape this module.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from pixelrefer_core.errors import (
    CorruptVideoError,
    EmptyVideoError,
    NotAVideoError,
    TruncatedVideoError,
    VideoError,
    VideoNotFoundError,
)

log = logging.getLogger(__name__)

try:  # decord's own error type is not a RuntimeError subclass in every release
    from decord._ffi.base import DECORDError as _DECORDError
except ImportError:  # pragma: no cover
    _DECORDError = RuntimeError

_DECODE_ERRORS = (RuntimeError, _DECORDError, IndexError, ValueError, OSError)

# Leading bytes of containers decord/FFmpeg read; a file with none of these is "not a video".
_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # mp4 / mov / m4v / 3gp
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # matroska / webm
    (0, b"RIFF"),  # avi
    (0, b"OggS"),
    (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"),  # mpeg-ps
    (0, b"\x00\x00\x01\xb3"),  # mpeg-es
    (0, b"\x30\x26\xb2\x75"),  # asf / wmv
)


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns. `duration_s` = num_frames / fps (the span the decodable frames cover)."""

    path: str
    fps: float
    num_frames: int
    duration_s: float
    width: int
    height: int


def _looks_like_container(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if len(head) >= 1 and head[0] == 0x47:  # mpeg-ts sync byte
        return True
    return any(head[off : off + len(sig)] == sig for off, sig in _SIGNATURES)


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoNotFoundError(path, "file does not exist")
    if not os.path.isfile(path):
        raise VideoNotFoundError(path, "not a regular file")
    if not os.access(path, os.R_OK):
        raise VideoNotFoundError(path, "file is not readable (permissions)")
    if os.path.getsize(path) == 0:
        raise EmptyVideoError(path, "file is empty (0 bytes)")


def _short(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return msg[-160:] if len(msg) > 160 else msg


def _count_decodable(path: str) -> tuple[int, int, str]:
    """(frames PyAV decodes before stopping, frames the container declares, why it stopped)."""
    import av

    count, declared, why = 0, 0, "end of file"
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            declared = int(stream.frames or 0)
            for _ in container.decode(stream):
                count += 1
    except Exception as exc:  # noqa: BLE001 - PyAV raises many types; we only report them
        why = _short(exc)
    return count, declared, why


def _diagnose(path: str, exc: BaseException, what: str) -> VideoError:
    """Turn a decord failure into the most specific VideoError."""
    if not _looks_like_container(path):
        return NotAVideoError(path, f"not a recognised video container ({what}: {_short(exc)})")
    readable, declared, why = _count_decodable(path)
    if readable > 0:
        return TruncatedVideoError(
            path,
            f"only the first {readable} frames decode (container declares {declared}); "
            f"decoding stops with: {why}; decord: {_short(exc)}",
            frames_readable=readable,
        )
    return CorruptVideoError(path, f"container recognised but no frame decodes ({what}: {_short(exc)})")


def _open(path: str):
    import decord

    _check_file(path)
    try:
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    except _DECODE_ERRORS as exc:
        raise _diagnose(path, exc, "open failed") from exc
    if len(vr) == 0:
        raise EmptyVideoError(path, "the container holds no video frames")
    return vr


def probe(path, check_tail: bool = True) -> VideoInfo:
    """Open `path` and describe it. Decodes the first frame (and the last one when `check_tail`).

    Raises VideoNotFoundError, EmptyVideoError, NotAVideoError, CorruptVideoError or, when the file
    opens but its tail does not decode (or it holds fewer frames than its index declares),
    TruncatedVideoError with `frames_readable`.
    """
    path = str(path)
    vr = _open(path)
    n = len(vr)
    try:
        first = vr.get_batch([0]).asnumpy()[0]
    except _DECODE_ERRORS as exc:
        raise _diagnose(path, exc, "first frame does not decode") from exc
    fps = float(vr.get_avg_fps())
    if not math.isfinite(fps) or fps <= 0:
        raise CorruptVideoError(path, f"the stream reports no usable frame rate ({fps})")
    if check_tail:
        try:
            vr.get_batch([n - 1]).asnumpy()
        except _DECODE_ERRORS as exc:
            raise _diagnose(path, exc, f"last frame {n - 1} does not decode") from exc
        _check_declared(path, n)
    h, w = first.shape[:2]
    return VideoInfo(path=path, fps=fps, num_frames=n, duration_s=n / fps, width=int(w), height=int(h))


def _check_declared(path: str, n: int) -> None:
    """A truncated file whose index survived declares more frames than decord can index."""
    import av

    try:
        with av.open(path) as container:
            declared = int(container.streams.video[0].frames or 0)
    except Exception:  # noqa: BLE001 - decord read it; PyAV's opinion is only a cross-check
        return
    if declared > n + 1:
        readable, _, why = _count_decodable(path)
        raise TruncatedVideoError(
            path,
            f"the index declares {declared} frames but only {n} are present; "
            f"{readable} decode before: {why}",
            frames_readable=min(readable, n),
        )


def fingerprint(path, block_size: int = 1 << 20) -> str:
    """Streaming sha256 (hex) of the file's bytes; this is the `video_id`."""
    path = str(path)
    if not os.path.isfile(path):
        raise VideoNotFoundError(path, "file does not exist")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(block_size):
            digest.update(block)
    return digest.hexdigest()


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


def _timestamps(vr, indices: Sequence[int], fps: float) -> list[float]:
    """Start times (s) of `indices` from the container's pts, first frame at 0; index/fps fallback."""
    try:
        t0 = float(vr.get_frame_timestamp(0)[0])
        ts = np.asarray(vr.get_frame_timestamp(list(indices)), dtype=np.float64).reshape(-1, 2)[:, 0] - t0
        if np.all(np.isfinite(ts)) and np.all(ts >= 0) and np.all(np.diff(ts) >= 0):
            return [float(round(t, 6)) for t in ts]
    except _DECODE_ERRORS:
        pass
    return [float(i) / fps for i in indices]


def _decode_batch(path: str, vr, indices: list[int]) -> tuple[list[np.ndarray], BaseException | None]:
    """Decode `indices`; on failure decode one by one and return the readable prefix and the error."""
    try:
        arr = vr.get_batch(indices).asnumpy()
        return [arr[i] for i in range(len(indices))], None
    except _DECODE_ERRORS as exc:
        first_exc: BaseException = exc
    frames: list[np.ndarray] = []
    vr2 = _open(path)  # decord's reader may be left mid-seek after a failure
    for idx in indices:
        try:
            frames.append(vr2.get_batch([idx]).asnumpy()[0])
        except _DECODE_ERRORS as exc:
            return frames, exc
    return frames, first_exc if not frames else None


def iter_frame_chunks(
    path, target_fps: float | None = None, chunk_size: int = 16
) -> Iterator[list[tuple[int, float, np.ndarray]]]:
    """Yield lists of up to `chunk_size` sampled `(frame_idx, t_seconds, rgb)`; one chunk in memory.

    If the file's tail does not decode, the readable frames are yielded first, then TruncatedVideoError
    (frames_readable = index of the first frame that failed) is raised.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    path = str(path)
    info = probe(path, check_tail=False)
    vr = _open(path)
    indices = sample_indices(info, target_fps)
    for start in range(0, len(indices), chunk_size):
        chunk = indices[start : start + chunk_size]
        frames, err = _decode_batch(path, vr, chunk)
        ts = _timestamps(vr, chunk[: len(frames)], info.fps)
        if frames:
            yield list(zip(chunk[: len(frames)], ts, frames, strict=True))
        if err is not None:
            failed = chunk[len(frames)]
            raise TruncatedVideoError(
                path,
                f"frame {failed} of {info.num_frames} does not decode: {_short(err)}",
                frames_readable=failed,
            ) from err


def iter_frames(path, target_fps: float | None = None, chunk_size: int = 16) -> Iterator[tuple[int, float, np.ndarray]]:
    """Flat version of `iter_frame_chunks`: `(frame_idx, t_seconds, rgb)` one by one."""
    for chunk in iter_frame_chunks(path, target_fps=target_fps, chunk_size=chunk_size):
        yield from chunk


def read_frames(path, frame_indices: Sequence[int]) -> tuple[list[np.ndarray], list[float]]:
    """Decode the given frame indices (any order) -> (RGB frames, timestamps in s), same order."""
    path = str(path)
    vr = _open(path)
    n = len(vr)
    indices = [int(i) for i in frame_indices]
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise IndexError(f"{path}: frame indices {bad[:5]} outside 0..{n - 1}")
    if not indices:
        return [], []
    frames, err = _decode_batch(path, vr, indices)
    if err is not None:
        failed = indices[len(frames)]
        raise TruncatedVideoError(
            path, f"frame {failed} does not decode: {_short(err)}", frames_readable=failed
        ) from err
    return frames, _timestamps(vr, indices, float(vr.get_avg_fps()))


__all__ = [
    "VideoInfo",
    "fingerprint",
    "iter_frame_chunks",
    "iter_frames",
    "probe",
    "read_frames",
    "sample_indices",
]
