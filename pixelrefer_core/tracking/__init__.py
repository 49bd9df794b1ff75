"""Segment and track every object of a video: discovery on keyframes, chunked propagation, IoU association.

Public names: TrackerConfig, Prompt, FrameRecord, ObjectTrack, Segmenter, track_video, track_file,
MotionSegmenter, SAM2Segmenter (imported lazily: it needs torch/sam2), build_segmenter, TRACKER_VERSION.
"""

from __future__ import annotations

from pixelrefer_core.tracking.motion import MotionSegmenter
from pixelrefer_core.tracking.segmenter import Segmenter
from pixelrefer_core.tracking.tracker import track_file, track_video
from pixelrefer_core.tracking.types import FrameRecord, ObjectTrack, Prompt, TrackerConfig

#: Bump when a code change alters tracking results (it is part of the track_key).
TRACKER_VERSION = "tracker-v1"


def build_segmenter(kind: str, checkpoint: str | None = None, device: str = "cpu", profile: str | None = None):
    """Make a segmenter. kind 'motion' (weight-free; checkpoint/profile unused) or 'sam2'.

    For 'sam2': `checkpoint` is an HF id (facebook/sam2.1-hiera-tiny|small|base-plus|large) or a local
    .pt path; `profile='tiny'` builds a randomly initialised 256 px Hiera-T (offline tests and demos).
    """
    if kind == "motion":
        return MotionSegmenter()
    if kind == "sam2":
        from pixelrefer_core.tracking.sam2_segmenter import SAM2Segmenter

        return SAM2Segmenter(checkpoint=checkpoint, device=device, profile=profile)
    raise ValueError(f"unknown segmenter kind {kind!r}: use 'motion' or 'sam2'")


def __getattr__(name: str):
    if name == "SAM2Segmenter":
        from pixelrefer_core.tracking.sam2_segmenter import SAM2Segmenter

        return SAM2Segmenter
    raise AttributeError(name)


__all__ = [
    "TRACKER_VERSION",
    "FrameRecord",
    "MotionSegmenter",
    "ObjectTrack",
    "Prompt",
    "SAM2Segmenter",
    "Segmenter",
    "TrackerConfig",
    "build_segmenter",
    "track_file",
    "track_video",
]
