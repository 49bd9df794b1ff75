"""Stage 4: describe tracked objects with PixelRefer-Lite; one `descriptions` unit per video x describe_key.

`plan_units` lists the (video, prompt) units still to do; `describe_units` claims them, builds the engine
items of several videos at once and runs the engine over them in one batched call (batching ACROSS
videos), then writes each unit and marks it done. Nothing loads a model when there is nothing to do.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from flows.keys import describe_key as make_describe_key
from flows.prompts import PromptSpec, question_text
from flows.stages.claims import claim
from flows.stages.describe_items import load_timelines, materialize, plan_items
from flows.stages.outcomes import DescribeOutcome
from pixelrefer_core.errors import VideoError
from storage import Store, table_from_records

__all__ = ["DESCRIBE_STAGE", "DescribeSetup", "DescribeTarget", "DescribeUnit", "describe_units", "plan_units"]

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
    generation: dict
    frame_selection: dict
    engine_version: str

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


def plan_units(store: Store, targets: list[DescribeTarget], prompts: list[PromptSpec], setup: DescribeSetup):
    """(units to do, outcomes of units skipped because done / failed for good)."""
    todo, skipped = [], []
    for target in targets:
        for prompt in prompts:
            key = setup.key(target.track_key, prompt, target.object_ids)
            rec = store.catalog.unit(DESCRIBE_STAGE, target.video_id, key)
            if rec is not None and rec.state == "done" and store.has_unit("descriptions", target.video_id, key):
                skipped.append(DescribeOutcome(target.video_id, key, prompt.id, "skipped"))
            elif rec is not None and rec.state == "failed" and not rec.retryable:
                skipped.append(DescribeOutcome(target.video_id, key, prompt.id, "failed", error=rec.error))
            else:
                todo.append(DescribeUnit(target, prompt, key))
    return todo, skipped


def describe_units(
    store: Store,
    units: list[DescribeUnit],
    engine_factory: Callable[[], object],
    *,
    frames_per_object: int,
    max_pairs: int,
    model_id: str,
    run_id: str | None,
    worker_id: str,
    items_per_call: int = 32,
    progress: Callable[[str], None] | None = None,
) -> list[DescribeOutcome]:
    """Claim, build, run and write `units`; returns one outcome per unit.

    Units are grouped by video; videos are added to one engine call until it holds `items_per_call`
    items. A VideoError while reading a video's frames fails that video's units (not retryable); other
    errors mark the claimed units failed (retryable) and propagate.
    """
    from pixelrefer_core.inference import DescribeItem

    outcomes: list[DescribeOutcome] = []
    engine = None
    by_video: dict[str, list[DescribeUnit]] = {}
    for unit in units:
        by_video.setdefault(unit.target.video_id, []).append(unit)
    pending: list[tuple[DescribeUnit, list]] = []  # (unit, [(object_ids, frames_used, item)])
    n_items = 0

    def flush() -> None:
        nonlocal engine, pending, n_items
        if not pending:
            return
        items = [it for _, entries in pending for (_, _, it) in entries]
        try:
            results = []
            if items:
                if engine is None:
                    engine = engine_factory()
                results = engine.run(items)
            by_key = {r.key: r for r in results}
            for unit, entries in pending:
                rows = [_row(unit, oids, used, by_key[item.key], model_id, run_id) for oids, used, item in entries]
                store.write_unit("descriptions", unit.target.video_id, unit.describe_key,
                                 table_from_records("descriptions", rows))
                store.catalog.mark_done(DESCRIBE_STAGE, unit.target.video_id, unit.describe_key)
                outcomes.append(DescribeOutcome(unit.target.video_id, unit.describe_key, unit.prompt.id, "done",
                                                n_rows=len(rows)))
        except Exception as exc:
            for unit, _ in pending:
                if store.catalog.unit_state(DESCRIBE_STAGE, unit.target.video_id, unit.describe_key) != "done":
                    store.catalog.mark_failed(DESCRIBE_STAGE, unit.target.video_id, unit.describe_key,
                                              f"{type(exc).__name__}: {exc}", retryable=True)
            raise
        if progress:
            progress(f"described {len(items)} object(s)/pair(s) across {len({u.target.video_id for u, _ in pending})} video(s)")
        pending, n_items = [], 0

    for video_id, video_units in by_video.items():
        mine = [u for u in video_units
                if claim(store.catalog, DESCRIBE_STAGE, video_id, u.describe_key, worker_id, uri=u.target.uri)]
        outcomes.extend(DescribeOutcome(video_id, u.describe_key, u.prompt.id, "busy")
                        for u in video_units if u not in mine)
        if not mine:
            continue
        try:
            built = _build_video_items(store, mine, frames_per_object, max_pairs, DescribeItem)
        except VideoError as exc:
            reason = f"{type(exc).__name__}: {exc.reason}"
            for u in mine:
                store.catalog.mark_failed(DESCRIBE_STAGE, video_id, u.describe_key, reason, retryable=False)
                outcomes.append(DescribeOutcome(video_id, u.describe_key, u.prompt.id, "failed", error=reason))
            continue
        except Exception as exc:
            for u in mine:
                store.catalog.mark_failed(DESCRIBE_STAGE, video_id, u.describe_key,
                                          f"{type(exc).__name__}: {exc}", retryable=True)
            raise
        pending.extend(built)
        n_items += sum(len(entries) for _, entries in built)
        if n_items >= items_per_call:
            flush()
    flush()
    return outcomes


def _build_video_items(store: Store, units: list[DescribeUnit], k: int, max_pairs: int, item_cls):
    """[(unit, [(object_ids, frames_used, DescribeItem)])] for the units of one video."""
    target = units[0].target
    timelines = load_timelines(store, target.video_id, target.track_key, target.object_ids)
    planned = {u.describe_key: plan_items(timelines, u.prompt.n_objects, k, max_pairs) for u in units}
    flat = [p for u in units for p in planned[u.describe_key]]
    inputs = iter(materialize(target.local_path, timelines, flat, target.video_id))
    built = []
    for u in units:
        question = question_text(u.prompt)
        entries = []
        for p in planned[u.describe_key]:
            kwargs = next(inputs)
            key = (target.video_id, u.describe_key, p.object_ids)
            entries.append((p.object_ids, p.frames, item_cls(key=key, question=question, **kwargs)))
        built.append((u, entries))
    return built


def _row(unit: DescribeUnit, object_ids, frames_used, result, model_id: str, run_id: str | None) -> dict:
    return dict(
        video_id=unit.target.video_id, track_key=unit.target.track_key, object_ids=list(object_ids),
        describe_key=unit.describe_key, prompt_id=unit.prompt.id, prompt=unit.prompt.text, task=unit.prompt.task,
        answer=result.text, model_id=model_id, frames_used=list(frames_used), n_tokens=int(result.n_tokens),
        latency_ms=float(result.latency_ms), run_id=run_id, created_at=dt.datetime.now(dt.UTC),
    )
