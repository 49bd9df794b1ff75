"""Overlay clips: the source video re-encoded as browser-playable H.264 MP4 with every object drawn.

Streaming: frames are decoded in chunks (`pixelrefer_core.video.iter_frame_chunks`) and encoded as they
come, and each object keeps only the mask it currently shows (decoded when its record starts being shown,
see `held`), so memory is one chunk of frames plus one mask per visible object, whatever the video's
length. The MP4 is H.264 (libx264, yuv420p, `+faststart`: the index first, so a browser starts playing
before the whole file is read), one output frame per source frame at the source's frame rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from pixelrefer_core.render.colors import object_color
from pixelrefer_core.render.draw import OverlayObject, draw_overlay, label_text
from pixelrefer_core.render.held import HeldMasks, MaskRecord
from pixelrefer_core.render.images import even_size, fit_size, resize_to
from pixelrefer_core.video import VideoInfo, iter_frame_chunks, probe

__all__ = ["ClipResult", "render_clip"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipResult:
    """What was written: path, frames, size in pixels, frame rate, and the wall time it took."""

    path: str
    frames: int
    width: int
    height: int
    fps: float
    seconds: float


class _MaskCache:
    """The mask each object currently shows, decoded once and resized to the output size."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self._current: dict[int, tuple[int, np.ndarray | None]] = {}

    def get(self, rec: MaskRecord) -> np.ndarray | None:
        held = self._current.get(rec.object_id)
        if held is not None and held[0] == rec.frame_idx:
            return held[1]
        mask = rec.decode()
        if mask is not None and mask.shape != (self.height, self.width):
            mask = cv2.resize(mask.astype(np.uint8), (self.width, self.height),
                              interpolation=cv2.INTER_NEAREST).astype(bool)
        self._current[rec.object_id] = (rec.frame_idx, mask)
        return mask


def render_clip(src: str, out: str, records: Iterable[MaskRecord], captions: Mapping[int, str | None] | None = None,
                *, max_side: int | None = None, chunk_size: int = 32, crf: int = 20, preset: str = "veryfast",
                alpha: float = 0.45, draw: bool = True, info: VideoInfo | None = None,
                on_frames: Callable[[int], None] | None = None) -> ClipResult:
    """Write the overlay clip of `src` to `out` (MP4, whatever its extension) from the stored `records`.

    `captions`: object id -> short caption (None: id only). `max_side`: longest side of the clip (default:
    the source's), rounded to even sizes. `draw=False` re-encodes without drawing (the baseline the
    render benchmark compares with). `on_frames(n)` is called after every chunk with its frame count.
    Raises VideoError subclasses when the source cannot be read.
    """
    started = time.perf_counter()
    info = info if info is not None else probe(src)
    width, height = even_size(*fit_size(info.width, info.height, max_side))
    sx, sy = width / info.width, height / info.height
    held = HeldMasks(records)
    masks = _MaskCache(width, height)
    captions = captions or {}
    labels = {oid: label_text(oid, captions.get(oid)) for oid in held.object_ids}
    colors = {oid: object_color(oid) for oid in held.object_ids}
    rate = Fraction(info.fps).limit_denominator(1001) if info.fps > 0 else Fraction(25)
    n = 0
    with av.open(out, "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for chunk in iter_frame_chunks(src, None, chunk_size, info=info):
            for frame_idx, _t, rgb in chunk:
                image = np.ascontiguousarray(resize_to(rgb, width, height))
                if draw:
                    shown = [OverlayObject(r.object_id, masks.get(r),
                                           (r.box[0] * sx, r.box[1] * sy, r.box[2] * sx, r.box[3] * sy),
                                           colors[r.object_id], labels[r.object_id])
                             for r in held.at(frame_idx)]
                    if shown:
                        image = draw_overlay(image, shown, alpha)
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
                n += 1
            if on_frames is not None:
                on_frames(len(chunk))
        for packet in stream.encode():
            container.mux(packet)
    seconds = time.perf_counter() - started
    log.debug("rendered %s -> %s: %d frames %dx%d in %.2f s", src, out, n, width, height, seconds)
    return ClipResult(path=out, frames=n, width=width, height=height, fps=float(rate), seconds=seconds)
