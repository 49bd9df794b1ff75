"""Stage 4: describe tracked objects with PixelRefer; one `descriptions` unit per video x describe_key.

`plan_units` lists the (video, prompt) units still to do; `describe_units` claims them, builds the engine
items of several videos into one batched engine call (batching ACROSS videos, at most `items_per_call`
items and their frames in memory at once), and writes each unit when its last item is answered. Nothing
loads a model when there is nothing to do.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flows.keys import describe_key as make_describe_key
from flows.progress import Meter
from flows.prompts import PromptSpec, question_text
from flows.stages.describe_items import (
    LABEL_RE,
    LITE,
    ItemRequest,
    ObjectTimeline,
    load_labels,
    load_timelines,
    materialize,
    plan_items,
    with_labels,
)
from flows.stages.outcomes import DescribeOutcome, Status
from flows.stages.units import (
    PERMANENT_ERRORS,
    UnitRef,
    claim_ref,
    error_text,
    finish,
    prior_status,
    record_failure,
)
from pixelrefer_core.errors import VideoError
from pixelrefer_core.video import VideoInfo, probe
from storage import Store, table_from_records
from storage.catalog import DEFAULT_LEASE_S

if TYPE_CHECKING:
    from pixelrefer_core.inference import DescribeEngine, DescribeItem, DescribeResult

__all__ = ["DESCRIBE_STAGE", "DescribeSetup", "DescribeTarget", "DescribeUnit", "describe_ref", "describe_units",
           "plan_units"]

log = logging.getLogger(__name__)
DESCRIBE_STAGE = "describe"


@dataclass(frozen=True)
class DescribeTarget:
    """A tracked video to describe. object_ids: only these objects (None: all of the tracking)."""

    video_id: str
    track_key: str
    uri: str
    local_path: str
    object_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class DescribeSetup:
    """Everything besides the prompt and tracking that changes answers (hashed into describe_key)."""

    model_id: str
    generation: dict[str, Any]
    frame_selection: dict[str, Any]
    engine_version: str
    variant: str = LITE  # which model the frames are chosen for (flows.stages.describe_items)

    def key(self, track_key: str, prompt: PromptSpec, object_ids: tuple[int, ...] | None = None) -> str:
        selection = dict(self.frame_selection)
        if object_ids is not None:  # a describe run over a subset writes its own unit
            selection["object_ids"] = sorted(object_ids)
        return make_describe_key(track_key, prompt.text, prompt.task, self.model_id, self.generation,
                                 selection, self.engine_version)


@dataclass(frozen=True)
class DescribeUnit:
    target: DescribeTarget
    prompt: PromptSpec
    describe_key: str

    @property
    def ref(self) -> UnitRef:
        return describe_ref(self.target.video_id, self.describe_key, self.target.uri)


def describe_ref(video_id: str, describe_key: str, uri: str | None = None) -> UnitRef:
    return UnitRef(DESCRIBE_STAGE, video_id, describe_key, uri)


def plan_units(store: Store, targets: Sequence[DescribeTarget], prompts: Sequence[PromptSpec],
               setup: DescribeSetup) -> tuple[list[DescribeUnit], list[DescribeOutcome]]:
    """(units to do, outcomes of units skipped because done / failed for good)."""
    todo, skipped = [], []
    for target in targets:
        for prompt in prompts:
            unit = DescribeUnit(target, prompt, setup.key(target.track_key, prompt, target.object_ids))
            prior = prior_status(store, unit.ref)
            if prior is None:
                todo.append(unit)
            else:
                skipped.append(DescribeOutcome(target.video_id, unit.describe_key, prompt.id, prior.status,
                                               error=prior.error))
    return todo, skipped


@dataclass
class _Open:
    """A claimed unit whose items are being answered: rows fill as results come back."""

    unit: DescribeUnit
    expected: int
    rows: list[dict[str, Any]] = field(default_factory=list)


def describe_units(
    store: Store,
    units: Sequence[DescribeUnit],
    engine_factory: Callable[[], DescribeEngine],
    *,
    frames_per_object: int,
    max_pairs: int,
    model_id: str,
    run_id: str | None,
    worker_id: str,
    items_per_call: int = 32,
    progress: Callable[[str], None] | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    variant: str = LITE,
) -> list[DescribeOutcome]:
    """Claim, build, run and write `units`; returns one outcome per unit.

    A VideoError while reading a video's frames fails that video's units (not retryable); any other
    error marks every claimed, unfinished unit failed (retryable) and propagates.
    """
    run = _Describer(store, engine_factory, model_id, run_id, items_per_call, progress, total_units=len(units),
                     variant=variant)
    by_video: dict[str, list[DescribeUnit]] = {}
    for unit in units:
        by_video.setdefault(unit.target.video_id, []).append(unit)
    try:
        for video_units in by_video.values():
            mine = [u for u in video_units if claim_ref(store, u.ref, worker_id, lease_s)]
            run.outcomes += [DescribeOutcome(u.target.video_id, u.describe_key, u.prompt.id, Status.BUSY)
                             for u in video_units if u not in mine]
            if mine:
                run.add_video(mine, frames_per_object, max_pairs)
        run.flush()
    except BaseException as exc:
        for state in run.open.values():
            record_failure(store, state.unit.ref, exc)
        raise
    return run.outcomes


class _Describer:
    """Feeds items of several videos to the engine in bounded batches and writes finished units."""

    def __init__(self, store: Store, engine_factory: Callable[[], DescribeEngine], model_id: str,
                 run_id: str | None, items_per_call: int, progress: Callable[[str], None] | None,
                 total_units: int = 0, variant: str = LITE):
        self.store, self.engine_factory, self.model_id, self.run_id = store, engine_factory, model_id, run_id
        self.items_per_call, self.progress = max(1, items_per_call), progress
        self.engine: DescribeEngine | None = None
        self.open: dict[tuple[str, str], _Open] = {}  # (video_id, describe_key) -> state
        self.batch: list[tuple[DescribeUnit, tuple[int, ...], tuple[int, ...], DescribeItem]] = []
        self.outcomes: list[DescribeOutcome] = []
        self.answered = 0
        self.meter = Meter("describe", total_units, "units", every_s=0.0)
        self.variant = variant

    def add_video(self, units: list[DescribeUnit], k: int, max_pairs: int) -> None:
        target = units[0].target
        try:
            timelines = load_timelines(self.store, target.video_id, target.track_key, target.object_ids)
            info = probe(target.local_path)  # once per video, for every batch of its items
            labels = load_labels(self.store, target.video_id, target.track_key) if any(
                LABEL_RE.search(u.prompt.text) for u in units) else {}
            requests = []
            for u in units:
                planned = plan_items(timelines, u.prompt.n_objects, k, max_pairs, self.variant)
                self.open[_id(u)] = _Open(u, len(planned))
                question = question_text(u.prompt)
                requests += [(u, ItemRequest((target.video_id, u.describe_key, p.object_ids),
                                             with_labels(question, [labels.get(o) for o in p.object_ids]), p))
                             for p in planned]
            for u in units:
                self._maybe_write(_id(u))  # units with no item (no objects) are complete now
            for chunk in _chunks(requests, self.items_per_call):
                self._add_items(target, timelines, chunk, info)
        except VideoError as exc:
            reason = error_text(exc)
            self.batch = [entry for entry in self.batch if entry[0].target.video_id != target.video_id]
            for u in units:
                if self.open.pop(_id(u), None) is not None:
                    record_failure(self.store, u.ref, exc)
                    self.outcomes.append(DescribeOutcome(target.video_id, u.describe_key, u.prompt.id,
                                                         Status.FAILED, error=reason))

    def _add_items(self, target: DescribeTarget, timelines: dict[int, ObjectTimeline],
                   chunk: list[tuple[DescribeUnit, ItemRequest]], info: VideoInfo) -> None:
        items = materialize(target.local_path, timelines, [r for _, r in chunk], target.video_id, self.variant, info)
        for (u, r), item in zip(chunk, items, strict=True):
            self.batch.append((u, r.planned.object_ids, r.planned.frames_used, item))
        if len(self.batch) >= self.items_per_call:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        if self.engine is None:
            self.engine = self.engine_factory()
        batch, self.batch = self.batch, []
        videos = {u.target.video_id for u, *_ in batch}
        answered = self._answer(batch)
        self.answered += answered
        if self.progress:
            self.progress(f"described {self.answered} object(s)/pair(s) ({answered} in this batch across "
                          f"{len(videos)} video(s)); {self.meter.line()}")

    def _answer(self, batch: list[tuple[DescribeUnit, tuple[int, ...], tuple[int, ...], DescribeItem]]) -> int:
        """Run the engine over `batch` and record the answers; returns how many. An item the model refuses
        (a bad prompt or input, raised before any model work) fails only its own unit, for good: the
        batch is then answered unit by unit."""
        assert self.engine is not None
        try:
            results = self.engine.run([item for *_, item in batch])
        except PERMANENT_ERRORS as exc:
            units = {_id(u): u for u, *_ in batch}
            if len(units) > 1:
                return sum(self._answer([e for e in batch if _id(e[0]) == uid]) for uid in units)
            (unit,) = units.values()
            if self.open.pop(_id(unit), None) is not None:
                record_failure(self.store, unit.ref, exc)
                self.outcomes.append(DescribeOutcome(unit.target.video_id, unit.describe_key, unit.prompt.id,
                                                     Status.FAILED, error=error_text(exc)))
            return 0
        for (u, object_ids, frames, _), result in zip(batch, results, strict=True):
            self.open[_id(u)].rows.append(_row(u, object_ids, frames, result, self.model_id, self.run_id))
            self._maybe_write(_id(u))
        return len(results)

    def _maybe_write(self, uid: tuple[str, str]) -> None:
        state = self.open[uid]
        if len(state.rows) < state.expected:
            return
        u = state.unit
        rows = sorted(state.rows, key=lambda r: r["object_ids"])
        self.store.write_unit("descriptions", u.target.video_id, u.describe_key,
                              table_from_records("descriptions", rows))
        finish(self.store, u.ref, len(rows))
        del self.open[uid]
        self.meter.done += 1
        self.outcomes.append(DescribeOutcome(u.target.video_id, u.describe_key, u.prompt.id, Status.DONE,
                                             n_rows=len(rows)))


def _id(unit: DescribeUnit) -> tuple[str, str]:
    return unit.target.video_id, unit.describe_key


def _chunks(seq: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _row(unit: DescribeUnit, object_ids: tuple[int, ...], frames_used: tuple[int, ...], result: DescribeResult,
         model_id: str, run_id: str | None) -> dict[str, Any]:
    return dict(
        video_id=unit.target.video_id, track_key=unit.target.track_key, object_ids=list(object_ids),
        describe_key=unit.describe_key, prompt_id=unit.prompt.id, prompt=unit.prompt.text, task=unit.prompt.task,
        answer=result.text, model_id=model_id, frames_used=list(frames_used), n_tokens=int(result.n_tokens),
        latency_ms=float(result.latency_ms), run_id=run_id, created_at=dt.datetime.now(dt.UTC),
    )
