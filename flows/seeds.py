"""Seed files: user boxes/points that start tracks ("track this car from 00:12").

A seed file is a YAML or JSON list of entries:

    - video: "cam3/*.mp4"        # glob over the video's path/URL, or its file name
      at: "00:12"                # time: "SS", "MM:SS" or "HH:MM:SS" (fractions allowed), or seconds
      box: [410, 220, 520, 300]  # x0, y0, x1, y1 pixels (x1/y1 exclusive)
      id: 100                    # optional: force the object id
    - video: gate.mp4
      frame: 240                 # a frame index instead of a time
      points: [[300, 200], [310, 260]]
      labels: [1, 0]             # optional: 1 = on the object (default), 0 = background

Each seed becomes a tracker `Prompt` on the first sampled frame at or after its time; its track is marked
`discovered_by = 'prompt'`. A video's seeds are part of its track_key, so seeding a video re-tracks it
into a new unit beside the automatic one. Errors raise `PromptError` naming the file, line and reason.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flows.entry_files import load_entries
from pixelrefer_core.errors import PromptError
from pixelrefer_core.tracking import Prompt

__all__ = ["SeedSpec", "load_seeds", "parse_time", "seeds_for_video", "to_prompts"]


def parse_time(value: object) -> float:
    """Seconds from 12, 12.5, "12", "00:12", "1:02:03.5". Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        parts = str(value).strip().split(":")
        if not 1 <= len(parts) <= 3 or any(p.strip() == "" for p in parts):
            raise ValueError(f"{value!r} is not SS, MM:SS or HH:MM:SS")
        seconds = 0.0
        for part in parts:
            try:
                seconds = seconds * 60 + float(part)
            except ValueError:
                raise ValueError(f"{value!r} is not SS, MM:SS or HH:MM:SS") from None
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds


def _numbers(value: object, n: int | None, what: str) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or (n is not None and len(value) != n):
        raise ValueError(f"{what} must be a list of {n} numbers" if n else f"{what} must be a list")
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
        raise ValueError(f"{what} must hold numbers, got {list(value)}")
    return tuple(float(v) for v in value)


class SeedSpec(BaseModel):
    """One validated seed: `at_s` (seconds) or `frame`; `box` or `points` (+ `labels`).

    In files the time is written `at` and the forced object id `id`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    video: str = Field(min_length=1)
    at_s: float | None = Field(None, alias="at")
    frame: int | None = Field(None, ge=0, strict=True)
    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float], ...] | None = None
    labels: tuple[int, ...] | None = None
    object_id: int | None = Field(None, alias="id", ge=1, strict=True)

    @field_validator("at_s", mode="before")
    @classmethod
    def _time(cls, value: object) -> float | None:
        return None if value is None else parse_time(value)

    @field_validator("box", mode="before")
    @classmethod
    def _box(cls, value: object) -> Any:
        if value is None:
            return None
        box = _numbers(value, 4, "box")
        if not (box[2] > box[0] and box[3] > box[1]):
            raise ValueError(f"{list(box)} must have x1 > x0 and y1 > y0")
        return box

    @field_validator("points", mode="before")
    @classmethod
    def _points(cls, value: object) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple) or not value:
            raise ValueError("must be a non-empty list of [x, y]")
        return tuple(_numbers(p, 2, "each point") for p in value)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: object) -> Any:
        if value is None:
            return None
        labels = _numbers(value, None, "labels")
        if any(v not in (0, 1) for v in labels) or 1 not in labels:
            raise ValueError("labels must be 0/1 with at least one 1")
        return tuple(int(v) for v in labels)

    @model_validator(mode="before")
    @classmethod
    def _default_labels(cls, data: Any) -> Any:
        """Points without labels are all on the object (1)."""
        if isinstance(data, dict) and isinstance(data.get("points"), list | tuple) and "labels" not in data:
            return {**data, "labels": [1] * len(data["points"])}
        return data

    @model_validator(mode="after")
    def _one_of_each(self) -> SeedSpec:
        if (self.at_s is None) == (self.frame is None):
            raise ValueError("give exactly one of 'at' (time) or 'frame' (index)")
        if (self.box is None) == (self.points is None):
            raise ValueError("give exactly one of 'box' [x0, y0, x1, y1] or 'points' [[x, y], ...]")
        if self.labels is not None and (self.points is None or len(self.labels) != len(self.points)):
            raise ValueError("labels must give one 0/1 per point")
        return self

    def canonical(self) -> dict[str, Any]:
        """Plain values for the track_key hash."""
        return {k: v for k, v in self.model_dump().items() if v is not None and k != "video"}


def load_seeds(path: str) -> list[SeedSpec]:
    """Read and validate a seed file."""
    return [seed for _, seed in load_entries(path, "seed file", SeedSpec, PromptError, "{video, at, box}")]


def seeds_for_video(seeds: list[SeedSpec], uri: str) -> list[SeedSpec]:
    """The seeds whose `video` pattern matches the video's path/URL, its tail, or its file name."""
    name = os.path.basename(uri.rstrip("/"))
    return [s for s in seeds
            if fnmatch.fnmatch(uri, s.video) or fnmatch.fnmatch(uri, "*/" + s.video) or fnmatch.fnmatch(name, s.video)]


def to_prompts(seeds: list[SeedSpec], fps: float):
    """Tracker prompts for one video (times -> frame index with the video's fps)."""
    out = []
    for s in seeds:
        frame = s.frame if s.frame is not None else int(round((s.at_s or 0.0) * fps))
        points = [(float(x), float(y)) for x, y in s.points] if s.points else None
        out.append(Prompt(frame_index=frame, box=s.box, points=points,
                          labels=list(s.labels) if s.labels else None, object_id=s.object_id))
    return out
