"""`describe_objects`: new prompts or a new model over objects already tracked; no tracking at all.

The selection is a SQL predicate over the latest tracking's objects and their videos, e.g.
`color = 'red' AND videos.fps >= 10` (columns of `objects` and `videos`; qualify with `objects.` /
`videos.` where a name is in both). Only `descriptions` units are written.
"""


import logging
import time

from prefect import flow, get_run_logger

from flows.archive import _publish, begin_run, describe_setup, run_describe, with_fresh_worker
from flows.settings import RunSettings
from flows.stages.describe import DescribeTarget, plan_units
from flows.stages.discover import source_for_uri
from flows.summary import RunSummary
from flows.tasks import progress, refresh_views_task
from storage import Store

__all__ = ["describe_objects", "select_targets"]

log = logging.getLogger(__name__)

_SELECT = """
SELECT objects.video_id, objects.track_key, objects.object_id, videos.uri
FROM latest_objects AS objects JOIN videos AS videos ON objects.video_id = videos.video_id
{where}
ORDER BY objects.video_id, objects.object_id
"""


def select_targets(store: Store, where: str | None, cache_dir: str) -> list[DescribeTarget]:
    """Tracked videos (latest tracking) with the objects matching `where` (None: all of them).

    Raises StoreError when the predicate is not valid SQL over objects/videos.
    """
    from storage import StoreError
    from storage.query import check_read_only

    con = store.connect()
    try:
        sql = _SELECT.format(where=f"WHERE ({where})" if where else "")
        try:
            check_read_only(con, sql)  # a predicate must not smuggle in a second, writing statement
            rows = con.execute(sql).fetchall()
        except Exception as exc:
            raise StoreError(f"--where {where!r} is not a valid predicate over objects/videos: {exc}") from exc
    finally:
        con.close()
    grouped: dict[tuple[str, str], tuple[str, list[int]]] = {}
    for video_id, track_key, object_id, uri in rows:
        grouped.setdefault((video_id, track_key), (uri, []))[1].append(int(object_id))
    targets = []
    for (video_id, track_key), (uri, object_ids) in grouped.items():
        source = source_for_uri(uri, cache_dir)
        targets.append(DescribeTarget(video_id, track_key, uri, source.local_path,
                                      object_ids=tuple(object_ids) if where else None))
    return targets


@flow(name="describe-objects", log_prints=False)
def describe_objects(settings: RunSettings) -> dict:
    """Describe the selected tracked objects with `settings.prompts_file` (default prompts when None)."""
    from flows.stages.discover import localize

    settings = with_fresh_worker(settings)
    logger = get_run_logger()
    started = time.perf_counter()
    store, prompts, run_id = begin_run(settings, "describe")
    summary = RunSummary(run_id=run_id, kind="describe")
    status = "failed"
    try:
        targets = select_targets(store, settings.where, settings.resolved_cache_dir)
        n_objects = sum(len(t.object_ids) if t.object_ids is not None else 0 for t in targets)
        progress(f"selected {len(targets)} tracked video(s)" + (f", {n_objects} object(s)" if settings.where else ""))
        for t in targets:
            localize(source_for_uri(t.uri, settings.resolved_cache_dir))
        dsetup = describe_setup(settings)
        todo, described = plan_units(store, targets, prompts, dsetup)
        if not targets:
            progress("describe: no tracked objects selected" + (f" by --where {settings.where!r}" if settings.where
                                                                  else " (run `pixelrefer run` first)"))
        elif todo:
            progress(f"describing: {len(todo)} unit(s) (videos x prompts) with {dsetup.model_id}")
            described += run_describe(settings, todo, dsetup.model_id, run_id)
        else:
            progress("describe: every unit already done")
        refresh_views_task(settings)
        summary.videos_found = len(targets)
        summary.descriptions_written = sum(d.n_rows for d in described if d.status == "done")
        summary.describe_units_done = sum(1 for d in described if d.status == "done")
        summary.describe_units_skipped = sum(1 for d in described if d.status == "skipped")
        summary.failures += [(d.video_id[:12], "describe", d.error or "") for d in described if d.status == "failed"]
        status = "ok"
    finally:
        summary.seconds = time.perf_counter() - started
        store.catalog.finish_run(run_id, status, summary.as_dict())
    _publish(summary, logger)
    return summary.as_dict()
