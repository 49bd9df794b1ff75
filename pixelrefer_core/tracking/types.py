"""Typed records of the tracker: its configuration, user prompts and the per-object output.

Coordinates: pixels of the source frame, x right, y down. Boxes are (x0, y0, x1, y1) with x1/y1 exclusive
(see `pixelrefer_core.masks`). `frame_idx` is the index in the video (decode order); `t` its timestamp in
seconds from the video's own timing (`pixelrefer_core.video`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True)
class TrackerConfig:
    """Every field changes results, so every field is in `as_dict()` (which feeds the track_key hash).

    - sample_fps: frames per second the video is sampled at before tracking (None: every frame).
    - keyframe_every: discovery runs on every `keyframe_every`-th sampled frame (and where prompts sit).
    - chunk_size: most sampled frames held at once (propagation window incl. its seed frame), >= 2.
    - iou_match: least mask IoU for a discovered proposal to be the same object as a tracked one.
    - reid_gate: a lost track is revived by a proposal whose centroid lies within reid_gate x the
      object's size (sqrt of area) + half its predicted travel of the motion-predicted position.
    - new_object_uncovered: a proposal not matched to a track is new only if more than this fraction
      of its pixels is outside every current track's mask.
    - max_missing_keyframes: a track absent at this many consecutive keyframes is retired (K).
    - min_area_frac / max_area_frac: masks smaller / larger than these fractions of the frame are
      dropped (fragments; "whole frame" masks of lost objects).
    - min_score: masks scored below this by the segmenter are dropped.
    - min_track_frames: tracks seen on fewer sampled frames are not reported.
    - backward_pass: propagate newly discovered objects backwards over the frames since the previous
      keyframe, so their first frames are not lost.
    - prompt_backward_min_score: a track a user seed created is extended backwards (frames before the
      seed's frame, since the previous keyframe) only where the segmenter scores the propagated mask at
      least this (and above 0); > 1 turns the extension off. Seeds say "this object, from here": frames
      before that are kept only when the model is confident they show it.
    """

    sample_fps: float | None = 3.0
    keyframe_every: int = 5
    chunk_size: int = 16
    iou_match: float = 0.5
    reid_gate: float = 1.0
    new_object_uncovered: float = 0.5
    max_missing_keyframes: int = 3
    min_area_frac: float = 0.0005
    max_area_frac: float = 0.8
    min_score: float = 0.0
    min_track_frames: int = 2
    backward_pass: bool = True
    prompt_backward_min_score: float = 0.5

    def __post_init__(self) -> None:
        if self.keyframe_every < 1:
            raise ValueError(f"keyframe_every must be >= 1, got {self.keyframe_every}")
        if self.chunk_size < 2:
            raise ValueError(f"chunk_size must be >= 2 (a seed frame and one more), got {self.chunk_size}")
        if self.max_missing_keyframes < 1:
            raise ValueError(f"max_missing_keyframes must be >= 1, got {self.max_missing_keyframes}")
        if not 0.0 <= self.min_area_frac < self.max_area_frac <= 1.0:
            raise ValueError(
                f"need 0 <= min_area_frac < max_area_frac <= 1, got {self.min_area_frac}, {self.max_area_frac}"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prompt:
    """A user seed on video frame `frame_index` (applied on the first sampled frame at or after it).

    `box` is (x0, y0, x1, y1) pixels; `points` a list of (x, y) pixels with `labels` 1 (object) / 0
    (background); `mask` an HxW bool mask of the object (used as is, e.g. from another tool). Give one
    of box / points / mask (box and points may be combined). `object_id` forces the track id (else the
    next free id is used).
    """

    frame_index: int
    box: tuple[float, float, float, float] | None = None
    points: list[tuple[float, float]] | None = None
    labels: list[int] | None = None
    object_id: int | None = None
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SkippedPrompt:
    """A prompt that gave no track. `frame_idx`: the sampled frame it was tried on (None: the video
    ended before its frame); `reason`: why, in words."""

    prompt: Prompt
    frame_idx: int | None
    reason: str


@dataclass(frozen=True, eq=False)
class Detection:
    """One object a segmenter found on a frame: an HxW bool `mask`, a `score` in [0, 1] and, for
    concept (text-prompted) discovery, the concept's `label` (None: unlabelled, automatic discovery)."""

    mask: np.ndarray
    score: float = 1.0
    label: str | None = None


@dataclass
class FrameRecord:
    """One object on one sampled frame. `mask_rle` is COCO RLE counts of an mask_h x mask_w mask."""

    frame_idx: int
    t: float
    box: tuple[float, float, float, float]
    area: int
    score: float
    mask_rle: str
    mask_h: int
    mask_w: int


@dataclass
class ObjectTrack:
    """One object over its visible life; `frames` sorted by frame_idx.

    color: dominant colour name (see `attributes.COLOR_NAMES`); mean_speed_px_s: mean centroid speed;
    direction_deg: direction of the mean velocity, degrees in [0, 360), 0 = moving right (+x),
    90 = moving up in the image (-y), 180 = left, 270 = down; NaN when the object does not move.
    mean_area_frac: mean mask area / frame area; max_area: largest mask area (px); mean_score: mean of
    the per-frame scores. label: the concept most of its keyframe detections carry (ties: the higher
    summed score), None when no detection carried one; label_score: mean detection score of that label
    (None without a label).
    """

    object_id: int
    discovered_by: Literal["auto", "prompt"]
    frames: list[FrameRecord] = field(default_factory=list)
    color: str = "unknown"
    mean_speed_px_s: float = math.nan
    direction_deg: float = math.nan
    mean_area_frac: float = 0.0
    max_area: int = 0
    mean_score: float = 0.0
    label: str | None = None
    label_score: float | None = None

    @property
    def first_frame(self) -> int:
        return self.frames[0].frame_idx

    @property
    def last_frame(self) -> int:
        return self.frames[-1].frame_idx

    @property
    def t_start(self) -> float:
        return self.frames[0].t

    @property
    def t_end(self) -> float:
        return self.frames[-1].t

    @property
    def frames_present(self) -> int:
        return len(self.frames)
