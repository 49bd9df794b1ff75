"""The decord backend: random access by frame index, batched decoding (`get_batch`), container pts.

decord counts frames from the container's index, so a file is taken by this backend only when its first
and last frames decode and its index does not declare more frames than decord sees (a truncated
"faststart" mp4 opens and reports frames it cannot decode). decord raises RuntimeError, DECORDError or
IndexError; those never leave this module except as `BackendFailure` (probe) or TruncatedVideoError.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pixelrefer_core.errors import CorruptVideoError, TruncatedVideoError
from pixelrefer_core.video._files import short
from pixelrefer_core.video._info import BackendFailure, VideoInfo
from pixelrefer_core.video._quiet import native_stderr_captured, quiet_decord

try:  # decord's own error type is not a RuntimeError subclass in every release
    from decord._ffi.base import DECORDError as _DECORDError
except ImportError:  # pragma: no cover
    _DECORDError = RuntimeError

DECODE_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, _DECORDError, IndexError, ValueError, OSError)
_quiet_done = False


def _reader(path: str) -> Any:
    """A decord VideoReader on `path` (decoder chatter captured, see `_quiet`)."""
    global _quiet_done
    import decord

    if not _quiet_done:
        quiet_decord()
        _quiet_done = True
    with native_stderr_captured(path):
        return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)


def _reopen(info: VideoInfo) -> Any:
    try:
        return _reader(info.path)
    except DECODE_ERRORS as exc:  # it opened at probe time: the file changed since
        raise CorruptVideoError(info.path, f"decord cannot open it any more: {short(exc)}") from exc


def _declared_frames(path: str) -> int:
    """Frames the container's index declares (PyAV reads the header only); 0 when unknown."""
    import av

    try:
        with av.open(path) as container:
            return int(container.streams.video[0].frames or 0)
    except Exception:  # noqa: BLE001 - decord read it; PyAV's opinion is only a cross-check
        return 0


def probe(path: str) -> VideoInfo:
    """VideoInfo of a file decord reads completely; BackendFailure otherwise."""
    try:
        vr = _reader(path)
    except DECODE_ERRORS as exc:
        raise BackendFailure("decord cannot open it", exc) from exc
    n = len(vr)
    if n == 0:
        raise BackendFailure("decord finds no video frames")
    try:
        first = vr.get_batch([0]).asnumpy()[0]
    except DECODE_ERRORS as exc:
        raise BackendFailure("decord cannot decode the first frame", exc) from exc
    fps = float(vr.get_avg_fps())
    if not math.isfinite(fps) or fps <= 0:
        raise BackendFailure(f"decord reports no usable frame rate ({fps})")
    try:
        vr.get_batch([n - 1]).asnumpy()
    except DECODE_ERRORS as exc:
        raise BackendFailure(f"decord cannot decode the last frame ({n - 1})", exc) from exc
    declared = _declared_frames(path)
    if declared > n + 1:
        raise BackendFailure(f"the index declares {declared} frames but decord finds only {n}")
    h, w = first.shape[:2]
    return VideoInfo(
        path=path, fps=fps, num_frames=n, duration_s=n / fps, width=int(w), height=int(h),
        decoded_frames=n, backend="decord", partial_reason=None, declared_frames=declared or n,
    )


def _timestamps(vr: Any, indices: Sequence[int], fps: float) -> list[float]:
    """Start times (s) of `indices` from the container's pts, first frame at 0; index/fps fallback."""
    try:
        t0 = float(vr.get_frame_timestamp(0)[0])
        ts = np.asarray(vr.get_frame_timestamp(list(indices)), dtype=np.float64).reshape(-1, 2)[:, 0] - t0
        if np.all(np.isfinite(ts)) and np.all(ts >= 0) and np.all(np.diff(ts) >= 0):
            return [float(round(t, 6)) for t in ts]
    except DECODE_ERRORS:
        pass
    return [float(i) / fps for i in indices]


def _decode_batch(path: str, vr: Any, indices: list[int]) -> tuple[list[np.ndarray], BaseException | None]:
    """Decode `indices`; on failure decode one by one and return the readable prefix and the error."""
    try:
        arr = vr.get_batch(indices).asnumpy()
        return [arr[i] for i in range(len(indices))], None
    except DECODE_ERRORS as exc:
        first_exc: BaseException = exc
    frames: list[np.ndarray] = []
    try:
        vr2 = _reader(path)  # decord's reader may be left mid-seek after a failure
    except DECODE_ERRORS:
        return frames, first_exc
    for idx in indices:
        try:
            frames.append(vr2.get_batch([idx]).asnumpy()[0])
        except DECODE_ERRORS as exc:
            return frames, exc
    return frames, first_exc if not frames else None


def _truncated(info: VideoInfo, failed: int, err: BaseException) -> TruncatedVideoError:
    return TruncatedVideoError(
        info.path, f"frame {failed} of {info.num_frames} does not decode: {short(err)}", frames_readable=failed
    )


def iter_chunks(
    info: VideoInfo, indices: list[int], chunk_size: int
) -> Iterator[list[tuple[int, float, np.ndarray]]]:
    """Chunks of `(idx, t, rgb)` for sorted `indices`; TruncatedVideoError after the readable prefix if a
    frame the probe vouched for does not decode."""
    vr = _reopen(info)
    for start in range(0, len(indices), chunk_size):
        chunk = indices[start : start + chunk_size]
        frames, err = _decode_batch(info.path, vr, chunk)
        ts = _timestamps(vr, chunk[: len(frames)], info.fps)
        if frames:
            yield list(zip(chunk[: len(frames)], ts, frames, strict=True))
        if err is not None:
            raise _truncated(info, chunk[len(frames)], err) from err


def read(info: VideoInfo, indices: list[int]) -> tuple[list[np.ndarray], list[float]]:
    vr = _reopen(info)
    frames, err = _decode_batch(info.path, vr, indices)
    if err is not None:
        raise _truncated(info, indices[len(frames)], err) from err
    return frames, _timestamps(vr, indices, info.fps)


__all__ = ["DECODE_ERRORS", "iter_chunks", "probe", "read"]
