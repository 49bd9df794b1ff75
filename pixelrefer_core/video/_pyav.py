"""The PyAV backend: sequential decoding, for what decord cannot read.

It serves files decord refuses (frame sizes its copy routine mishandles, such as 16x16) and partial files
(the readable prefix of a truncated video). Frames are counted by decoding the whole file once at probe
time: an index cannot be trusted in a file that is cut short. Frame index k is the k-th frame the decoder
outputs (presentation order), as decord counts them. Reading is sequential from the start and keeps only
the requested frames, so memory is one chunk (or the requested frames) whatever the video length;
random access costs a decode from the start, acceptable for the small or damaged files this backend gets.

Timestamps are the frames' pts times the stream time base, shifted so the first frame is at 0; where a
frame has no pts or it goes backwards, index / fps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from pixelrefer_core.errors import EmptyVideoError, TruncatedVideoError
from pixelrefer_core.video._files import short
from pixelrefer_core.video._info import BackendFailure, VideoInfo


def _video_stream(container: Any, path: str) -> Any:
    if not container.streams.video:
        raise EmptyVideoError(path, "the container holds no video stream")
    return container.streams.video[0]


def probe(path: str) -> VideoInfo:
    """VideoInfo from a full decode; partial when decoding stops early or before the declared count.

    Raises BackendFailure when PyAV cannot open the file or no frame decodes, EmptyVideoError when the
    container has no video stream.
    """
    import av

    try:
        container = av.open(path)
    except Exception as exc:  # noqa: BLE001 - PyAV raises many types for unreadable input
        raise BackendFailure("PyAV cannot open it", exc) from exc
    count, size, stopped = 0, (0, 0), None
    first_t: float | None = None
    last_t: float | None = None
    timed = 0
    with container:
        stream = _video_stream(container, path)
        declared = int(stream.frames or 0)
        rate = stream.average_rate or stream.guessed_rate
        try:
            for frame in container.decode(stream):
                if count == 0:
                    size = (int(frame.width), int(frame.height))
                if frame.time is not None:
                    first_t = float(frame.time) if first_t is None else first_t
                    last_t, timed = float(frame.time), timed + 1
                count += 1
        except Exception as exc:  # noqa: BLE001 - any decode error ends the readable prefix
            stopped = exc
    if count == 0:
        raise BackendFailure("PyAV decodes no frame", stopped)
    fps = float(rate) if rate else 0.0  # a Fraction from the container
    if (not math.isfinite(fps) or fps <= 0) and first_t is not None and last_t is not None and last_t > first_t:
        fps = (timed - 1) / (last_t - first_t)
    if not math.isfinite(fps) or fps <= 0:
        raise BackendFailure(f"the stream reports no usable frame rate ({rate})")
    reason = None
    if stopped is not None:
        reason = f"decoding stops after frame {count - 1}" + (f" of {declared}" if declared else "") + f": {short(stopped)}"
    elif declared > count:
        reason = f"the index declares {declared} frames but the data ends after {count}"
    return VideoInfo(
        path=path, fps=fps, num_frames=count, duration_s=count / fps, width=size[0], height=size[1],
        decoded_frames=count, backend="pyav", partial_reason=reason, declared_frames=declared,
    )


def _frames(info: VideoInfo, wanted: set[int], last: int) -> Iterator[tuple[int, float, np.ndarray]]:
    """(idx, t, rgb) for every index in `wanted`, decoding frames 0..last in order."""
    import av

    with av.open(info.path) as container:
        stream = _video_stream(container, info.path)
        t0: float | None = None
        prev = -1.0
        idx = -1
        try:
            for frame in container.decode(stream):
                idx += 1
                if idx == 0 and frame.time is not None:
                    t0 = float(frame.time)
                if idx in wanted:
                    t = float(frame.time) - t0 if frame.time is not None and t0 is not None else math.nan
                    if not math.isfinite(t) or t < prev:
                        t = idx / info.fps
                    prev = t
                    yield idx, round(t, 6), frame.to_ndarray(format="rgb24")
                if idx >= last:
                    return
        except Exception as exc:  # noqa: BLE001 - the probe counted these frames: the file changed since
            raise TruncatedVideoError(
                info.path, f"frame {idx + 1} of {info.num_frames} does not decode: {short(exc)}", frames_readable=idx + 1
            ) from exc
    if idx < last:
        raise TruncatedVideoError(
            info.path, f"the data ends after frame {idx} of {info.num_frames}", frames_readable=idx + 1
        )


def iter_chunks(
    info: VideoInfo, indices: list[int], chunk_size: int
) -> Iterator[list[tuple[int, float, np.ndarray]]]:
    if not indices:
        return
    chunk: list[tuple[int, float, np.ndarray]] = []
    for item in _frames(info, set(indices), indices[-1]):
        chunk.append(item)
        if len(chunk) == chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read(info: VideoInfo, indices: list[int]) -> tuple[list[np.ndarray], list[float]]:
    got: dict[int, tuple[float, np.ndarray]] = {}
    for idx, t, rgb in _frames(info, set(indices), max(indices)):
        got[idx] = (t, rgb)
    return [got[i][1] for i in indices], [got[i][0] for i in indices]


__all__ = ["iter_chunks", "probe", "read"]
