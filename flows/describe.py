"""`describe_objects`: new prompts or a new model over objects already tracked; no tracking at all.

The selection is a SQL predicate over the latest tracking's objects and their videos, e.g.
`color = 'red' AND videos.fps >= 10` (columns of `objects` and `videos`; qualify with `objects.` /
`videos.` where a name is in both). Only `descriptions` units are written, and their vectors for search
(`description_vectors`, flows.index_phase).

No `from __future__ import annotations` here: Prefect reads the flow's annotations to validate its
parameters when a served or deployed run starts.
"""

import logging

from prefect import flow

from flows.index_phase import add_index_summary, run_embedder, run_index
from flows.phases import run_describe
from flows.plan import describe_setup
from flows.progress import progress
from flows.run_context import run_context
from flows.settings import RunSettings
from flows.stages.describe import DescribeTarget, plan_units
from flows.stages.discover import localize, source_for_uri
from flows.summary import RunSummary, add_describe_counts
from flows.tasks import refresh_views_task
from storage import Store
from storage.predicates import select_objects

__all__ = ["describe_objects", "select_targets"]

log = logging.getLogger(__name__)

def select_targets(store: Store, where: str | None, cache_dir: str) -> list[DescribeTarget]:
    """Tracked videos (latest tracking) with the objects matching `where` (None: all of them).

    Raises PredicateError (a StoreError) when `where` is not one read-only boolean expression over
    objects/videos; it is checked and run by the storage layer on a locked-down connection.
    """
    rows = select_objects(store, where).to_pylist()
    grouped: dict[tuple[str, str], tuple[str, list[int]]] = {}
    for row in rows:
        grouped.setdefault((row["video_id"], row["track_key"]), (row["uri"], []))[1].append(int(row["object_id"]))
    targets = []
    for (video_id, track_key), (uri, object_ids) in grouped.items():
        source = source_for_uri(uri, cache_dir)
        targets.append(DescribeTarget(video_id, track_key, uri, source.local_path,
                                      object_ids=tuple(object_ids) if where else None))
    return targets


@flow(name="describe-objects", log_prints=False)
def describe_objects(settings: RunSettings) -> RunSummary:
    """Describe the selected tracked objects with `settings.prompts_file` (default prompts when None)."""
    with run_context(settings, "describe") as ctx:
        settings = ctx.settings
        embedder = run_embedder(settings, ctx.store)  # before any work: an embedder that cannot load stops it
        targets = select_targets(ctx.store, settings.where, settings.resolved_cache_dir)
        n_objects = sum(len(t.object_ids) if t.object_ids is not None else 0 for t in targets)
        progress(f"selected {len(targets)} tracked video(s)" + (f", {n_objects} object(s)" if settings.where else ""))
        if not targets:
            progress("describe: no tracked objects selected" + (f" by --where {settings.where!r}" if settings.where
                                                                  else " (run `pixelrefer run` first)"))
        for t in targets:
            localize(source_for_uri(t.uri, settings.resolved_cache_dir))
        setup = describe_setup(settings)
        assert setup is not None
        todo, described = plan_units(ctx.store, targets, ctx.prompts, setup)
        if targets and not todo:
            progress("describe: every unit already done")
        described += run_describe(ctx, todo)
        indexed = run_index(ctx, described, embedder)
        refresh_views_task(settings)
        ctx.summary.videos_found = len(targets)
        add_describe_counts(ctx.summary, described, {t.video_id: t.uri for t in targets})
        add_index_summary(ctx.summary, indexed, settings.store)
    return ctx.summary
