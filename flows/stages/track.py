"""Stage 3: track every object of one video and write its `objects` + `object_frames` unit.

One unit per video x track_key. Frames come from `pixelrefer_core.video.iter_frames` at the tracker's
sample fps; `track_video` returns ObjectTrack records which become table rows here (boxes in pixels of
the full frame, x1/y1 exclusive; t in seconds = frame_idx / fps as the reader reports it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flows.keys import track_key as make_track_key
from flows.progress import Meter
from flows.seeds import SeedSpec, to_prompts
from flows.stages.outcomes import IngestOutcome, Status, TrackOutcome
from flows.stages.units import UnitRef, run_unit
from pixelrefer_core.tracking import (
    TRACKER_VERSION,
    ObjectTrack,
    Prompt,
    Segmenter,
    SkippedPrompt,
    TrackerConfig,
    prefetched_frames,
    track_video,
    validate_prompt,
)
from pixelrefer_core.video import probe, sample_indices
from storage import Store, table_from_records
from storage.catalog import DEFAULT_LEASE_S

__all__ = ["TRACK_STAGE", "TrackingSetup", "track_one", "track_ref", "tracking_setup", "tracks_to_tables"]

log = logging.getLogger(__name__)
TRACK_STAGE = "track"


@dataclass(frozen=True)
class TrackingSetup:
    """The tracker configuration of a video, its segmenter id, user seeds (as tracker prompts) and the key."""

    config: TrackerConfig
    segmenter_id: str
    track_key: str
    prompts: tuple[Prompt, ...] = ()  # tracker Prompts of this video (user seeds), part of the key


def tracking_setup(config: TrackerConfig, segmenter_id: str, seeds: tuple[SeedSpec, ...] | list[SeedSpec] = (),
                   fps: float | None = None) -> TrackingSetup:
    """Setup (and track_key) for a TrackerConfig, a segmenter id and optional user seeds of one video.

    Without seeds the key depends on config and segmenter only (the same for every video of a run).
    """
    key_config: dict[str, Any] = config.as_dict()
    prompts: tuple[Prompt, ...] = ()
    if seeds:
        key_config = {**key_config, "seeds": [s.canonical() for s in seeds]}
        prompts = tuple(to_prompts(list(seeds), fps or 0.0))
    return TrackingSetup(config, segmenter_id, make_track_key(key_config, segmenter_id, TRACKER_VERSION), prompts)


def track_ref(video_id: str, track_key: str, uri: str | None = None) -> UnitRef:
    return UnitRef(TRACK_STAGE, video_id, track_key, uri)


def tracks_to_tables(video_id: str, track_key: str, tracks: list[ObjectTrack]) -> tuple[pa.Table, pa.Table]:
    """ObjectTrack list -> (`objects` table, `object_frames` table) of one unit."""
    now = dt.datetime.now(dt.UTC)
    objects, frames = [], []
    for tr in tracks:
        objects.append(dict(
            video_id=video_id, track_key=track_key, object_id=int(tr.object_id),
            first_frame=int(tr.first_frame), last_frame=int(tr.last_frame), t_start=float(tr.t_start),
            t_end=float(tr.t_end), frames_present=int(tr.frames_present), max_area=int(tr.max_area),
            mean_area_frac=float(tr.mean_area_frac), mean_score=float(tr.mean_score),
            discovered_by=tr.discovered_by, color=tr.color, mean_speed_px_s=float(tr.mean_speed_px_s),
            direction_deg=float(tr.direction_deg), tracked_at=now, label=tr.label,
            label_score=None if tr.label_score is None else float(tr.label_score),
        ))
        for fr in tr.frames:
            x0, y0, x1, y1 = fr.box
            frames.append(dict(
                video_id=video_id, track_key=track_key, object_id=int(tr.object_id), frame_idx=int(fr.frame_idx),
                t=float(fr.t), x0=float(x0), y0=float(y0), x1=float(x1), y1=float(y1), area=int(fr.area),
                score=float(fr.score), mask_rle=fr.mask_rle, mask_h=int(fr.mask_h), mask_w=int(fr.mask_w),
            ))
    return table_from_records("objects", objects), table_from_records("object_frames", frames)


def run_tracker(local_path: str, setup: TrackingSetup, segmenter: Segmenter,
                on_prompt_skipped: Callable[[SkippedPrompt], None] | None = None,
                label: str = "") -> list[ObjectTrack]:
    """Decode `local_path` at the configured sample fps (frames prepared ahead of use) and track it,
    with a progress line (frames done / total, rate, ETA) every few seconds; returns ObjectTrack list."""
    info = probe(local_path)
    meter = Meter(f"track {label or local_path}", len(sample_indices(info, setup.config.sample_fps)), "frames")

    def metered(frames: Iterable[tuple[int, float, np.ndarray]]) -> Iterator[tuple[int, float, np.ndarray]]:
        for frame in frames:
            yield frame
            meter.add()

    frames = prefetched_frames(local_path, setup.config, segmenter, info=info)
    return track_video(metered(frames), segmenter, setup.config, setup.prompts, on_prompt_skipped=on_prompt_skipped)


def check_seeds(setup: TrackingSetup, video: IngestOutcome) -> None:
    """Refuse seeds that cannot apply to this video (a box outside the frame, a time after its end):
    PromptError, so the video's seeded tracking fails with the reason instead of silently differing."""
    for prompt in setup.prompts:
        validate_prompt(prompt, int(video.width or 0), int(video.height or 0), int(video.num_frames or 0))


def track_one(store: Store, video: IngestOutcome, setup: TrackingSetup, segmenter: Segmenter,
              worker_id: str, lease_s: float = DEFAULT_LEASE_S) -> TrackOutcome:
    """Track one ingested video unless its unit is done; failures are recorded in the catalog (see
    flows.stages.units: a VideoError is permanent and returned, anything else is raised for a retry)."""
    assert video.video_id is not None, "only ingested videos are tracked"
    vid, key = video.video_id, setup.track_key
    found: list[ObjectTrack] = []
    skipped: list[str] = []
    started = time.perf_counter()

    def note_skipped(s: SkippedPrompt) -> None:
        where = f"frame {s.frame_idx}" if s.frame_idx is not None else "the end of the video"
        skipped.append(f"seed at frame {s.prompt.frame_index} on {video.uri}: {s.reason} (tried at {where}); "
                       "ignored")

    def work() -> dict[str, int]:
        check_seeds(setup, video)
        found.extend(run_tracker(video.local_path, setup, segmenter, note_skipped, label=video.uri))
        objects, object_frames = tracks_to_tables(vid, key, found)
        store.write_unit("object_frames", vid, key, object_frames)  # first: `objects` marks the unit present
        store.write_unit("objects", vid, key, objects)
        return {"objects": objects.num_rows, "object_frames": object_frames.num_rows}

    result = run_unit(store, track_ref(vid, key, video.uri), worker_id, work, lease_s)
    outcome = TrackOutcome(vid, video.uri, video.local_path, key, result.status, error=result.error)
    if result.status == Status.DONE:
        return dataclasses.replace(outcome, n_objects=len(found), seconds=time.perf_counter() - started,
                                   skipped_seeds=tuple(skipped))
    if result.status == Status.SKIPPED:
        return dataclasses.replace(outcome, n_objects=_count_objects(store, vid, key))
    return outcome


def _count_objects(store: Store, video_id: str, key: str) -> int:
    with store.fs.open(store.unit_path("objects", video_id, key), "rb") as fh:
        return int(pq.read_metadata(fh).num_rows)
