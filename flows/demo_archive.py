"""A small archive of generated videos (plus a corrupt file and, when present, one real clip) for the
offline demo and the flow tests. Moving coloured shapes on a static textured background, so the motion
segmenter finds them: a red object moving left, an object entering late, objects crossing in time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import cv2
import numpy as np

from pixelrefer_core.errors import VideoError
from pixelrefer_core.synthetic import SyntheticObject, render_scene, write_video
from pixelrefer_core.video import iter_frames

__all__ = ["ArchiveScene", "DEMO_SCENES", "TEST_SCENES", "make_archive", "trim_real_clip"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchiveScene:
    """One generated video: file name (may contain a sub-folder), size, length and fps, objects."""

    name: str
    objects: tuple[SyntheticObject, ...]
    num_frames: int
    fps: float
    width: int = 320
    height: int = 240
    seed: int = 0


DEMO_SCENES = (
    ArchiveScene("cam1/street.mp4", (
        SyntheticObject("red", "rect", 36, start=(250, 90), velocity=(-4.0, 0.0)),
        SyntheticObject("blue", "circle", 30, start=(40, 170), velocity=(3.0, -0.5)),
        SyntheticObject("green", "rect", 28, start=(150, 10), velocity=(0.0, 3.0), enter_frame=24),
    ), num_frames=54, fps=12.0, seed=1),
    ArchiveScene("cam2/yard.mp4", (
        SyntheticObject("yellow", "circle", 34, start=(160, 200), velocity=(0.0, -3.0)),
        SyntheticObject("red", "circle", 30, start=(20, 60), velocity=(4.0, 0.0), enter_frame=15),
    ), num_frames=40, fps=10.0, seed=2),
)

# Tiny scenes for tests: 160x120, 24 frames.
TEST_SCENES = (
    ArchiveScene("a/left.mp4", (
        SyntheticObject("red", "rect", 22, start=(130, 40), velocity=(-4.0, 0.0)),
        SyntheticObject("blue", "circle", 18, start=(20, 85), velocity=(3.0, 0.0), enter_frame=8),
    ), num_frames=24, fps=12.0, width=160, height=120, seed=3),
    ArchiveScene("b/up.mp4", (
        SyntheticObject("green", "rect", 20, start=(70, 95), velocity=(0.0, -3.0)),
    ), num_frames=24, fps=8.0, width=160, height=120, seed=4),
)


def make_archive(folder: str, scenes=DEMO_SCENES, corrupt: bool = True) -> list[str]:
    """Write `scenes` (and `broken/corrupt.mp4`, random bytes) under `folder`; returns the paths written.
    Existing files are kept, so making the archive twice changes nothing."""
    written = []
    for scene in scenes:
        path = os.path.join(folder, scene.name)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            frames, _ = render_scene(list(scene.objects), scene.num_frames, scene.width, scene.height,
                                     seed=scene.seed)
            tmp = path + ".tmp.mp4"
            write_video(tmp, frames, fps=scene.fps)
            os.replace(tmp, path)
        written.append(path)
    if corrupt:
        path = os.path.join(folder, "broken", "corrupt.mp4")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        written.append(path)
    return written


def trim_real_clip(src: str, dst: str, fps: float = 4.0, seconds: float = 4.0, max_side: int = 320) -> str | None:
    """Copy the first `seconds` of a real video at `fps`, downscaled to `max_side`; None when unreadable."""
    if os.path.exists(dst):
        return dst
    frames = []
    try:
        for _, t, frame in iter_frames(src, target_fps=fps):
            if t >= seconds:
                break
            h, w = frame.shape[:2]
            scale = min(1.0, max_side / max(h, w))
            size = (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)
            frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    except VideoError as exc:
        log.warning("skipping real clip %s: %s", src, exc)
        return None
    if not frames:
        return None
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    write_video(dst + ".tmp.mp4", frames, fps=fps)
    os.replace(dst + ".tmp.mp4", dst)
    return dst
