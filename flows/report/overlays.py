"""Where overlay clips live and what each was made from (a JSON sidecar beside every MP4).

`pixelrefer render` writes ``<overlays>/<video_id>.mp4`` and then ``<video_id>.json`` (the tracking,
objects, size and caption digest it was made from); the report links a clip only when its sidecar names
the video's current tracking. The default folder sits beside the store, ``<store>-overlays``, so that
neither `render` nor `report` adds anything to the store itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass

__all__ = ["ClipSidecar", "captions_digest", "clip_file", "default_overlays_dir", "read_sidecar", "sidecar_file",
           "write_sidecar"]


def default_overlays_dir(store_root: str) -> str:
    root = os.path.abspath(store_root).rstrip("/")
    return root + "-overlays"


def clip_file(overlays: str, video_id: str) -> str:
    return os.path.join(overlays, f"{video_id}.mp4")


def sidecar_file(overlays: str, video_id: str) -> str:
    return os.path.join(overlays, f"{video_id}.json")


def captions_digest(captions: dict[int, str | None]) -> str:
    return hashlib.sha256(json.dumps(sorted(captions.items())).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ClipSidecar:
    video_id: str
    track_key: str
    objects: list[int] | None  # None: every object
    max_side: int | None
    captions: str  # captions_digest of the captions drawn
    frames: int
    width: int
    height: int
    fps: float
    source: str
    rendered_at: str


def read_sidecar(overlays: str, video_id: str) -> ClipSidecar | None:
    """The sidecar of a clip whose MP4 is there too; None otherwise (or when the sidecar is unreadable)."""
    path = sidecar_file(overlays, video_id)
    if not (os.path.isfile(path) and os.path.isfile(clip_file(overlays, video_id))):
        return None
    try:
        with open(path) as fh:
            return ClipSidecar(**json.load(fh))
    except (OSError, ValueError, TypeError):
        return None


def write_sidecar(overlays: str, sidecar: ClipSidecar) -> None:
    path = sidecar_file(overlays, sidecar.video_id)
    tmp = f"{path}.partial"
    with open(tmp, "w") as fh:
        json.dump(asdict(sidecar), fh, indent=1)
    os.replace(tmp, path)
