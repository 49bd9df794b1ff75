"""Planning a run cheaply: which units of which videos are left to do, before any model or server starts.

The plan lists the archive, fingerprints what it must, computes every unit's key (ingest, track,
describe) and asks the catalog and the files whether each unit is done (flows.stages.units). What is done
comes back as the outcomes the stages would return, so a run with nothing left to do is summarised exactly
like any other; what is left is what the flow submits as tasks. Nothing here imports torch, sam2 or
Prefect.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from flows.prompts import DEFAULT_PROMPTS, PromptSpec, load_prompts
from flows.runtime import frame_selection_params, generation_params, model_identity, resolve_model_ref
from flows.seeds import SeedSpec, load_seeds, seeds_for_video
from flows.settings import RunSettings
from flows.stages.describe import DescribeSetup, DescribeTarget, plan_units
from flows.stages.discover import Discovery, VideoSource, discover_videos
from flows.stages.index import index_work_left
from flows.stages.ingest import ingest_ref, skipped_outcome
from flows.stages.outcomes import IngestOutcome, Status, TrackOutcome
from flows.stages.track import track_ref, tracking_setup
from flows.stages.units import prior_status
from pixelrefer_core.errors import VideoError
from pixelrefer_core.inference import ENGINE_VERSION
from pixelrefer_core.tracking import TrackerConfig, segmenter_id_for
from pixelrefer_core.video import fingerprint
from storage import Store
from storage.catalog import VideoPathRecord

__all__ = ["ArchivePlan", "Phase", "describe_setup", "load_run_prompts", "mark_duplicates", "plan_archive",
           "plan_describe", "plan_ingest", "plan_tracking", "segmenter_id", "tracker_config"]

log = logging.getLogger(__name__)


def tracker_config(settings: RunSettings) -> TrackerConfig:
    """The TrackerConfig of a run (its defaults, with the run's sample fps)."""
    return TrackerConfig(sample_fps=settings.sample_fps)


def segmenter_id(settings: RunSettings) -> str:
    """The segmenter's id (part of the track_key), derived from the settings without building a model."""
    return segmenter_id_for(settings.resolved_segmenter, settings.segmenter_checkpoint, settings.profile,
                            **settings.segmenter_options())


def describe_setup(settings: RunSettings, create_model: bool = True) -> DescribeSetup | None:
    """What besides prompt and tracking decides describe keys; None when the model is not there yet
    (the tiny profile's checkpoint is made on first use, which planning leaves to the run)."""
    ref = resolve_model_ref(settings, create=create_model)
    if settings.model is None and not create_model and not _is_checkpoint(ref):
        return None
    handle = model_identity(ref, settings.model_revision)
    return DescribeSetup(model_id=handle.model_id, generation=generation_params(settings),
                         frame_selection=frame_selection_params(settings, handle.variant), engine_version=ENGINE_VERSION,
                         variant=handle.variant)


def _is_checkpoint(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "config.json"))


def load_run_prompts(settings: RunSettings) -> list[PromptSpec]:
    return load_prompts(settings.prompts_file) if settings.prompts_file else list(DEFAULT_PROMPTS)


@dataclass
class Phase:
    """One stage's plan: what is left to do, and the outcomes of what is settled (done or failed for good)."""

    todo: list = field(default_factory=list)
    settled: list = field(default_factory=list)


@dataclass
class ArchivePlan:
    """A run's plan as far as it goes before work: a later phase is planned only once the earlier one has
    nothing left (it depends on its outcomes). `work_left` is False when the whole run is already done."""

    discovery: Discovery
    ingest: Phase
    track: Phase | None = None
    describe: Phase | None = None
    index_left: bool = False  # descriptions without vectors of the run's embedder (e.g. a new --embedder)
    unmatched_seeds: list[SeedSpec] = field(default_factory=list)

    @property
    def work_left(self) -> bool:
        return self.index_left or any(p is None or p.todo for p in (self.ingest, self.track, self.describe))


def known_fingerprints(store: Store) -> dict[str, VideoPathRecord]:
    """Every path the catalog saw, with the video id its bytes had and when it last saw them."""
    return {p.uri: p for p in store.catalog.video_paths()}


def _fingerprint(source: VideoSource, known: dict[str, VideoPathRecord]) -> str:
    """The video id of a local source: the recorded one when the file has the recorded size and was not
    modified since the catalog last saw it (hashing terabytes on every scheduled run would dominate a
    run with nothing to do), else the sha256 of its bytes."""
    seen = known.get(source.uri)
    if seen is not None and seen.size_bytes == source.size_bytes and source.stamp.isdigit():
        modified = dt.datetime.fromtimestamp(int(source.stamp) / 1e9, dt.UTC).replace(tzinfo=None)
        if modified < seen.last_seen:
            return seen.video_id
    return fingerprint(source.local_path)


def plan_ingest(store: Store, discovery: Discovery) -> Phase:
    """Fingerprint the local sources; todo holds (source, video_id or None when not fingerprinted yet)."""
    phase = Phase()
    known = known_fingerprints(store)
    for source in discovery.sources:
        if source.local_path != source.uri and not os.path.exists(source.local_path):
            phase.todo.append((source, None))  # remote, not copied yet: the ingest task copies and fingerprints
            continue
        try:
            video_id = _fingerprint(source, known)
        except (OSError, VideoError) as exc:
            phase.settled.append(IngestOutcome(source.uri, source.local_path, Status.FAILED,
                                               error=f"cannot be read ({exc})"))
            continue
        prior = prior_status(store, ingest_ref(video_id, source.uri))
        if prior is None:
            phase.todo.append((source, video_id))
        elif prior.status == Status.SKIPPED:
            phase.settled.append(skipped_outcome(store, source, video_id))
        else:
            phase.settled.append(IngestOutcome(source.uri, source.local_path, prior.status, video_id,
                                               source.size_bytes, error=prior.error, previously=prior.previously))
    return phase


def mark_duplicates(outcomes: Sequence[IngestOutcome]) -> list[IngestOutcome]:
    """Outcomes sorted by uri, with `duplicate_of` set on every path whose bytes an earlier path has."""
    first: dict[str, str] = {}
    out = []
    for o in sorted(outcomes, key=lambda o: o.uri):
        vid = o.video_id
        if vid and o.status != Status.FAILED:
            if vid in first:
                o = dataclasses.replace(o, duplicate_of=first[vid])
            else:
                first[vid] = o.uri
        out.append(o)
    return out


def plan_tracking(settings: RunSettings, store: Store, videos: Sequence[IngestOutcome]) -> tuple[Phase, list[SeedSpec]]:
    """Track units of the usable videos: todo holds (video, TrackingSetup); also the seeds no video matched."""
    config, seg_id = tracker_config(settings), segmenter_id(settings)
    seeds = load_seeds(settings.seeds_file) if settings.seeds_file else []
    used: set[int] = set()
    shared = tracking_setup(config, seg_id)
    phase = Phase()
    for video in videos:
        if not video.usable or video.video_id is None:
            continue
        own = seeds_for_video(seeds, video.uri)
        used.update(id(s) for s in own)
        setup = tracking_setup(config, seg_id, own, video.fps) if own else shared
        prior = prior_status(store, track_ref(video.video_id, setup.track_key, video.uri))
        if prior is None:
            phase.todo.append((video, setup))
        else:
            n = _count(store, video.video_id, setup.track_key) if prior.status == Status.SKIPPED else 0
            phase.settled.append(TrackOutcome(video.video_id, video.uri, video.local_path, setup.track_key,
                                              prior.status, n_objects=n, error=prior.error))
    return phase, [s for s in seeds if id(s) not in used]


def _count(store: Store, video_id: str, key: str) -> int:
    with store.fs.open(store.unit_path("objects", video_id, key), "rb") as fh:
        return int(pq.read_metadata(fh).num_rows)


def plan_describe(settings: RunSettings, store: Store, prompts: Sequence[PromptSpec],
                  tracked: Sequence[TrackOutcome], create_model: bool = True) -> Phase | None:
    """Describe units of the tracked videos (None: keys unknown until the model is made, see describe_setup)."""
    targets = [DescribeTarget(t.video_id, t.track_key, t.uri, t.local_path)
               for t in tracked if t.status in (Status.DONE, Status.SKIPPED)]
    if not targets:
        return Phase()
    setup = describe_setup(settings, create_model=create_model)
    if setup is None:
        return None
    todo, settled = plan_units(store, targets, prompts, setup)
    return Phase(todo, settled)


def plan_archive(settings: RunSettings, store: Store, prompts: Sequence[PromptSpec]) -> ArchivePlan:
    """The plan of an archive run as far as it can be known before any work (see module docstring)."""
    discovery = discover_videos(settings.archive or "", settings.extensions, settings.resolved_cache_dir)
    plan = ArchivePlan(discovery, plan_ingest(store, discovery))
    if plan.ingest.todo:
        return plan
    plan.track, plan.unmatched_seeds = plan_tracking(settings, store, mark_duplicates(plan.ingest.settled))
    if plan.track.todo:
        return plan
    if not settings.describe:  # a tracking-only run (--no-describe) is done once its tracking is
        plan.describe = Phase()
        return plan
    plan.describe = plan_describe(settings, store, prompts, plan.track.settled, create_model=False)
    if plan.describe is not None and not plan.describe.todo:
        described = [(d.video_id, d.describe_key) for d in plan.describe.settled
                     if d.status in (Status.DONE, Status.SKIPPED)]
        plan.index_left = bool(described) and index_work_left(store, described, settings.embedder, settings.device)
    return plan
