"""Generated media for tests, benchmarks and the offline demo.

`render_scene` draws simple coloured shapes moving over a static textured background and returns, for
every frame, the ground-truth mask of each object's *visible* pixels (what is hidden by a later object or
by an occluder is not in the mask). `write_video` encodes frames as H.264 mp4 with PyAV so that decord
(and therefore `pixelrefer_core.video`) can read them back.

Coordinates: pixels, x to the right, y down, origin at the top-left corner. Everything is deterministic
given `seed`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

#: Named RGB colours the scenes can use (names match `tracking.attributes` colour names).
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 225, 30),
    "green": (40, 190, 50),
    "cyan": (30, 210, 220),
    "blue": (30, 60, 220),
    "purple": (140, 40, 200),
    "pink": (245, 110, 190),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "black": (15, 15, 15),
    "brown": (120, 70, 30),
}


@dataclass
class SyntheticObject:
    """One object of a scene.

    `size` is the side of a square (`rect`) or the diameter of a disc (`circle`), in pixels.
    `start` is the object's centre (x, y) at `enter_frame`; it then moves by `velocity` (vx, vy) pixels
    per frame. It is drawn on frames `enter_frame <= f < exit_frame` (`exit_frame=None`: to the end) and
    wherever it is inside the image. `color` is a name from `COLORS` or an RGB triple.
    """

    color: str | tuple[int, int, int]
    shape: Literal["rect", "circle"] = "rect"
    size: int = 30
    start: tuple[float, float] = (0.0, 0.0)
    velocity: tuple[float, float] = (0.0, 0.0)
    enter_frame: int = 0
    exit_frame: int | None = None

    def rgb(self) -> tuple[int, int, int]:
        if isinstance(self.color, str):
            if self.color not in COLORS:
                raise ValueError(f"unknown colour {self.color!r}; use one of {sorted(COLORS)} or an RGB triple")
            return COLORS[self.color]
        return tuple(int(c) for c in self.color)  # type: ignore[return-value]

    def center_at(self, frame: int) -> tuple[float, float]:
        dt = frame - self.enter_frame
        return (self.start[0] + self.velocity[0] * dt, self.start[1] + self.velocity[1] * dt)

    def visible_on(self, frame: int) -> bool:
        return frame >= self.enter_frame and (self.exit_frame is None or frame < self.exit_frame)


def _shape_mask(obj: SyntheticObject, frame: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    cx, cy = obj.center_at(frame)
    half = obj.size / 2.0
    if obj.shape == "circle":
        return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= half * half
    if obj.shape == "rect":
        return (np.abs(xx + 0.5 - cx) <= half) & (np.abs(yy + 0.5 - cy) <= half)
    raise ValueError(f"unknown shape {obj.shape!r}; use 'rect' or 'circle'")


def _background(width: int, height: int, background: npt.ArrayLike | None, seed: int) -> np.ndarray:
    if background is not None:
        arr = np.asarray(background, dtype=np.uint8)
        if arr.shape == (3,):
            return np.broadcast_to(arr, (height, width, 3)).copy()
        if arr.shape != (height, width, 3):
            raise ValueError(f"background must be an RGB triple or a {height}x{width}x3 array, got {arr.shape}")
        return arr.copy()
    # A dim, smooth, slightly textured gray: neutral for colour naming, not flat (as real footage).
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 70.0 + 20.0 * (xx / max(width - 1, 1)) + 10.0 * (yy / max(height - 1, 1))
    noise = rng.normal(0.0, 3.0, size=(height, width)).astype(np.float32)
    gray = np.clip(base + noise, 0, 255)
    return np.repeat(gray[:, :, None], 3, axis=2).astype(np.uint8)


def render_scene(
    objects: Sequence[SyntheticObject],
    num_frames: int,
    width: int = 320,
    height: int = 240,
    background: npt.ArrayLike | None = None,
    seed: int = 0,
    occluders: Sequence[SyntheticObject] = (),
) -> tuple[list[np.ndarray], list[dict[int, np.ndarray]]]:
    """Render a scene.

    Objects are drawn in list order (a later object hides an earlier one), then `occluders` on top of
    everything (they are scene furniture, not objects: they have no ground truth). `background` is None
    (a seeded textured gray), an RGB triple, or an HxWx3 uint8 array.

    Returns `(frames, truth)`: `frames[f]` is RGB HxWx3 uint8; `truth[f]` maps the object's index in
    `objects` to its HxW bool mask of visible pixels, for objects with at least one visible pixel.
    """
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    bg = _background(width, height, background, seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames: list[np.ndarray] = []
    truth: list[dict[int, np.ndarray]] = []
    for f in range(num_frames):
        img = bg.copy()
        owner = np.full((height, width), -1, dtype=np.int32)
        for i, obj in enumerate(objects):
            if not obj.visible_on(f):
                continue
            m = _shape_mask(obj, f, yy, xx)
            img[m] = obj.rgb()
            owner[m] = i
        for occ in occluders:
            if not occ.visible_on(f):
                continue
            m = _shape_mask(occ, f, yy, xx)
            img[m] = occ.rgb()
            owner[m] = -1
        masks = {i: owner == i for i in range(len(objects))}
        truth.append({i: m for i, m in masks.items() if m.any()})
        frames.append(img)
    return frames, truth


def write_video(
    path: str | os.PathLike[str], frames: Sequence[np.ndarray], fps: float = 10.0, crf: int = 18, faststart: bool = True, gop: int = 10
) -> None:
    """Encode RGB HxWx3 uint8 frames as an H.264 (libx264, yuv420p) mp4 at constant `fps`.

    Width and height must be even (yuv420p). Frame i is stamped at exactly i / fps seconds.
    `faststart` puts the index (moov) before the data, as streaming files do: a truncated copy then
    still opens and fails only on its tail.
    """
    import av

    if not frames:
        raise ValueError("write_video needs at least one frame")
    h, w = frames[0].shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"H.264 yuv420p needs even width and height, got {w}x{h}")
    rate = Fraction(fps).limit_denominator(1001)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "g": str(max(1, gop))}
        for arr in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    log.debug("wrote %d frames (%dx%d @ %s fps) to %s", len(frames), w, h, fps, path)


__all__ = ["COLORS", "SyntheticObject", "render_scene", "write_video"]
