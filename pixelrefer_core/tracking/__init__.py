"""Segment and track every object of a video: discovery on keyframes, chunked propagation, IoU association.

Public names: TrackerConfig, Prompt, SkippedPrompt, Detection, FrameRecord, ObjectTrack, Segmenter,
track_video, track_file, validate_prompt, ConceptSpec, parse_concepts, validate_concepts, MotionSegmenter,
SAM2Segmenter / SAM3Segmenter (imported lazily: they need torch and model code), build_segmenter,
segmenter_id_for, TRACKER_VERSION.
"""

from __future__ import annotations

from typing import Any

from pixelrefer_core.tracking.concepts import ConceptSpec, parse_concepts, validate_concepts
from pixelrefer_core.tracking.motion import MotionSegmenter
from pixelrefer_core.tracking.prompts import validate_prompt
from pixelrefer_core.tracking.registry import SEGMENTER_KINDS, build_segmenter, segmenter_id_for
from pixelrefer_core.tracking.segmenter import Segmenter
from pixelrefer_core.tracking.tracker import prefetched_frames, track_file, track_video
from pixelrefer_core.tracking.types import (
    Detection,
    FrameRecord,
    ObjectTrack,
    Prompt,
    SkippedPrompt,
    TrackerConfig,
)

#: Bump when a code change alters tracking results (it is part of the track_key).
#: v2: seeds that yield no mask change nothing; seeded objects' backward extension is thresholded;
#: labels from concept discovery.
TRACKER_VERSION = "tracker-v2"


def __getattr__(name: str) -> Any:
    if name == "SAM2Segmenter":
        from pixelrefer_core.tracking.sam2_segmenter import SAM2Segmenter

        return SAM2Segmenter
    if name == "SAM3Segmenter":
        from pixelrefer_core.tracking.sam3_segmenter import SAM3Segmenter

        return SAM3Segmenter
    raise AttributeError(name)


__all__ = [
    "SEGMENTER_KINDS",
    "TRACKER_VERSION",
    "ConceptSpec",
    "Detection",
    "FrameRecord",
    "MotionSegmenter",
    "ObjectTrack",
    "Prompt",
    "SAM2Segmenter",
    "SAM3Segmenter",
    "Segmenter",
    "SkippedPrompt",
    "TrackerConfig",
    "build_segmenter",
    "parse_concepts",
    "prefetched_frames",
    "segmenter_id_for",
    "track_file",
    "track_video",
    "validate_concepts",
    "validate_prompt",
]
