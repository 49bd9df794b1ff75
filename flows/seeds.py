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
from dataclasses import dataclass

from flows.entry_files import read_entry_file
from pixelrefer_core.errors import PromptError

__all__ = ["SeedSpec", "load_seeds", "parse_time", "seeds_for_video", "to_prompts"]

_FIELDS = {"video", "at", "frame", "box", "points", "labels", "id"}


@dataclass(frozen=True)
class SeedSpec:
    """One validated seed: `at_s` (seconds) or `frame`; `box` or `points` (+ `labels`)."""

    video: str
    at_s: float | None = None
    frame: int | None = None
    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float], ...] | None = None
    labels: tuple[int, ...] | None = None
    object_id: int | None = None

    def canonical(self) -> dict:
        """Plain values for the track_key hash."""
        return {k: v for k, v in self.__dict__.items() if v is not None and k != "video"}


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
            seconds = seconds * 60 + float(part)
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds


def load_seeds(path: str) -> list[SeedSpec]:
    """Read and validate a seed file."""
    return [_validate(entry, at) for at, entry in read_entry_file(path, "seed file", PromptError, "{video, at, box}")]


def _numbers(value: object, n: int | None, what: str, at: str) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or (n is not None and len(value) != n):
        raise PromptError(f"{at}: {what} must be a list of {n} numbers" if n else f"{at}: {what} must be a list")
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise PromptError(f"{at}: {what} must hold numbers ({exc})") from exc


def _validate(entry: object, at: str) -> SeedSpec:
    if not isinstance(entry, dict):
        raise PromptError(f"{at}: expected a mapping with video, at|frame, box|points")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise PromptError(f"{at}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    video = entry.get("video")
    if not isinstance(video, str) or not video:
        raise PromptError(f"{at}: missing 'video' (a file name or glob)")
    if ("at" in entry) == ("frame" in entry):
        raise PromptError(f"{at}: give exactly one of 'at' (time) or 'frame' (index)")
    at_s = frame = None
    if "at" in entry:
        try:
            at_s = parse_time(entry["at"])
        except ValueError as exc:
            raise PromptError(f"{at}: at: {exc}") from exc
    else:
        if not isinstance(entry["frame"], int) or isinstance(entry["frame"], bool) or entry["frame"] < 0:
            raise PromptError(f"{at}: frame must be a non-negative integer")
        frame = entry["frame"]
    if ("box" in entry) == ("points" in entry):
        raise PromptError(f"{at}: give exactly one of 'box' [x0, y0, x1, y1] or 'points' [[x, y], ...]")
    box = points = labels = None
    if "box" in entry:
        box = _numbers(entry["box"], 4, "box", at)
        if not (box[2] > box[0] and box[3] > box[1]):
            raise PromptError(f"{at}: box {list(box)} must have x1 > x0 and y1 > y0")
    else:
        raw = entry["points"]
        if not isinstance(raw, list) or not raw:
            raise PromptError(f"{at}: points must be a non-empty list of [x, y]")
        points = tuple(_numbers(p, 2, "each point", at) for p in raw)
        labels = tuple(int(v) for v in _numbers(entry.get("labels", [1] * len(points)), len(points), "labels", at))
        if set(labels) - {0, 1} or 1 not in labels:
            raise PromptError(f"{at}: labels must be 0/1 with at least one 1")
    object_id = entry.get("id")
    if object_id is not None and (not isinstance(object_id, int) or isinstance(object_id, bool) or object_id < 1):
        raise PromptError(f"{at}: id must be a positive integer")
    return SeedSpec(video, at_s, frame, box, points, labels, object_id)


def seeds_for_video(seeds: list[SeedSpec], uri: str) -> list[SeedSpec]:
    """The seeds whose `video` pattern matches the video's path/URL, its tail, or its file name."""
    name = os.path.basename(uri.rstrip("/"))
    return [s for s in seeds
            if fnmatch.fnmatch(uri, s.video) or fnmatch.fnmatch(uri, "*/" + s.video) or fnmatch.fnmatch(name, s.video)]


def to_prompts(seeds: list[SeedSpec], fps: float):
    """Tracker prompts for one video (times -> frame index with the video's fps)."""
    from pixelrefer_core.tracking import Prompt

    out = []
    for s in seeds:
        frame = s.frame if s.frame is not None else int(round(s.at_s * fps))
        out.append(Prompt(frame_index=frame, box=s.box, points=[tuple(p) for p in s.points] if s.points else None,
                          labels=list(s.labels) if s.labels else None, object_id=s.object_id))
    return out
