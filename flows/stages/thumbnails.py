"""Stage 4: the thumbnails of one tracked video: `object_thumbnails`, one unit per video x track_key.

Right after tracking (and for existing stores, `pixelrefer thumbnails`). For each object its best frame is
the one the describe stage would show first: `select_frames(frame_idx, score, area, k=1)` (score x
sqrt(area)); only those frames are decoded, a few at a time (`read_frames`), never the whole video again.
Each row holds the crop (box + context, mask outline in the object's report colour) and the whole frame
at reduced size as JPEG bytes (pixelrefer_core.render.thumbnails), so the report needs no video decode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flows.stages.outcomes import Status
from flows.stages.units import UnitRef, prior_status, run_unit
from pixelrefer_core.inference.frames import select_frames
from pixelrefer_core.masks import decode_rle
from pixelrefer_core.render import ThumbnailConfig, make_thumbnail, object_color
from pixelrefer_core.render.thumbnails import DEFAULT_CONFIG
from pixelrefer_core.video import probe, read_frames
from storage import Store, table_from_records
from storage.catalog import DEFAULT_LEASE_S

__all__ = ["THUMBNAILS_STAGE", "BestFrame", "ThumbnailTarget", "ThumbnailsOutcome", "best_frames",
           "ThumbnailsSummary", "make_thumbnails", "run_store_thumbnails", "store_targets", "thumbnail_table",
           "thumbnails_ref"]

log = logging.getLogger(__name__)
THUMBNAILS_STAGE = "thumbnails"
DECODE_BATCH = 8  # frames decoded at once: memory is bounded by this, not by the number of objects


@dataclass(frozen=True)
class ThumbnailTarget:
    """A tracked video: its tracking, and the local file of its bytes (None: not found, with the reason)."""

    video_id: str
    track_key: str
    uri: str
    local_path: str | None
    missing_reason: str | None = None


@dataclass(frozen=True)
class ThumbnailsOutcome:
    """One video x track_key after the thumbnails stage (SKIPPED with a reason: the source is gone)."""

    video_id: str
    track_key: str
    uri: str
    status: Status
    n_objects: int = 0
    error: str | None = None


@dataclass(frozen=True)
class BestFrame:
    """One object's best view: frame, time, box (pixels, x1/y1 exclusive) and RLE mask."""

    object_id: int
    frame_idx: int
    t: float
    box: tuple[float, float, float, float]
    mask_rle: str | None
    mask_h: int
    mask_w: int


def thumbnails_ref(video_id: str, track_key: str, uri: str | None = None) -> UnitRef:
    return UnitRef(THUMBNAILS_STAGE, video_id, track_key, uri)


_COLUMNS = ["object_id", "frame_idx", "t", "x0", "y0", "x1", "y1", "area", "score", "mask_rle", "mask_h", "mask_w"]


def best_frames(store: Store, video_id: str, track_key: str) -> list[BestFrame]:
    """Each object's best frame (the describe stage's rule, k=1), by object id, from the timeline unit."""
    with store.fs.open(store.unit_path("object_frames", video_id, track_key), "rb") as fh:
        rows = pq.ParquetFile(fh).read(columns=_COLUMNS).sort_by([("object_id", "ascending"),
                                                                   ("frame_idx", "ascending")]).to_pydict()
    by_object: dict[int, list[int]] = {}
    for i, oid in enumerate(rows["object_id"]):
        by_object.setdefault(int(oid), []).append(i)
    out = []
    for oid, idx in by_object.items():
        scores = [rows["score"][i] if rows["score"][i] is not None else 1.0 for i in idx]
        chosen = select_frames([rows["frame_idx"][i] for i in idx], scores, [rows["area"][i] for i in idx], k=1)[0]
        i = next(i for i in idx if rows["frame_idx"][i] == chosen)
        out.append(BestFrame(oid, int(chosen), float(rows["t"][i]),
                             tuple(float(rows[k][i]) for k in ("x0", "y0", "x1", "y1")),  # type: ignore[arg-type]
                             rows["mask_rle"][i], int(rows["mask_h"][i] or 0), int(rows["mask_w"][i] or 0)))
    return out


def thumbnail_table(video_id: str, track_key: str, local_path: str, best: Sequence[BestFrame],
                    config: ThumbnailConfig = DEFAULT_CONFIG) -> pa.Table:
    """The `object_thumbnails` rows of one unit: decode the best frames (DECODE_BATCH at a time), draw."""
    info = probe(local_path)
    frames_needed = sorted({b.frame_idx for b in best})
    by_frame: dict[int, list[BestFrame]] = {}
    for b in best:
        by_frame.setdefault(b.frame_idx, []).append(b)
    records = []
    for start in range(0, len(frames_needed), DECODE_BATCH):
        batch = frames_needed[start : start + DECODE_BATCH]
        frames, _ = read_frames(local_path, batch, info=info)
        for frame_idx, frame in zip(batch, frames, strict=True):
            for b in by_frame[frame_idx]:
                mask = decode_rle(b.mask_rle, b.mask_h, b.mask_w) if b.mask_rle and b.mask_h and b.mask_w else None
                thumb = make_thumbnail(frame, mask, object_color(b.object_id), b.box, config)
                x0, y0, x1, y1 = thumb.crop_box
                records.append(dict(
                    video_id=video_id, track_key=track_key, object_id=b.object_id, frame_idx=b.frame_idx, t=b.t,
                    crop_x0=x0, crop_y0=y0, crop_x1=x1, crop_y1=y1, crop_jpeg=thumb.crop_jpeg,
                    crop_w=thumb.crop_w, crop_h=thumb.crop_h, frame_jpeg=thumb.frame_jpeg,
                    frame_w=thumb.frame_w, frame_h=thumb.frame_h))
    records.sort(key=lambda r: int(r["object_id"]))  # type: ignore[call-overload]
    return table_from_records("object_thumbnails", records)


@dataclass
class _Written:
    rows: int = 0


def make_thumbnails(store: Store, target: ThumbnailTarget, worker_id: str, lease_s: float = DEFAULT_LEASE_S,
                    config: ThumbnailConfig = DEFAULT_CONFIG) -> ThumbnailsOutcome:
    """Write the thumbnails unit of one tracked video unless done (flows.stages.units). A video whose
    source is gone is SKIPPED with the reason and not recorded, so it is done once the file is back."""
    base: dict[str, Any] = dict(video_id=target.video_id, track_key=target.track_key, uri=target.uri)
    ref = thumbnails_ref(target.video_id, target.track_key, target.uri)
    written = _Written()

    def work() -> int:
        assert target.local_path is not None
        best = best_frames(store, target.video_id, target.track_key)
        table = thumbnail_table(target.video_id, target.track_key, target.local_path, best, config)
        store.write_unit("object_thumbnails", target.video_id, target.track_key, table)
        written.rows = table.num_rows
        return table.num_rows

    if target.local_path is None:
        prior = prior_status(store, ref)
        if prior is not None and prior.status == Status.SKIPPED:
            return ThumbnailsOutcome(**base, status=Status.SKIPPED, n_objects=_count(store, target))
        return ThumbnailsOutcome(**base, status=Status.SKIPPED, error=target.missing_reason or "source not found")
    result = run_unit(store, ref, worker_id, work, lease_s)
    if result.status == Status.DONE:
        return ThumbnailsOutcome(**base, status=Status.DONE, n_objects=written.rows)
    if result.status == Status.SKIPPED:
        return ThumbnailsOutcome(**base, status=Status.SKIPPED, n_objects=_count(store, target))
    return ThumbnailsOutcome(**base, status=result.status, error=result.error)


def _count(store: Store, target: ThumbnailTarget) -> int:
    with store.fs.open(store.unit_path("object_thumbnails", target.video_id, target.track_key), "rb") as fh:
        return int(pq.read_metadata(fh).num_rows)


def store_targets(store: Store, cache_dir: str, video_ids: Sequence[str] | None = None,
                  latest_only: bool = False) -> list[ThumbnailTarget]:
    """Every tracking of the store whose track unit is done and whose objects file exists (only the latest
    tracking of each video with `latest_only`; only `video_ids` when given), with its source located."""
    from flows.report.sources import known_uris, locate_source

    wanted = None if video_ids is None else set(video_ids)
    done = {(u.video_id, u.unit_key) for u in store.catalog.units(stage="track", state="done")}
    units = [(v, k) for v, k in store.list_units("objects") if (v, k) in done and (wanted is None or v in wanted)]
    con = store.connect()
    try:
        videos = {r[0]: (r[1], r[2]) for r in con.execute("SELECT video_id, uri, size_bytes FROM videos").fetchall()}
        latest = {r[0]: r[1] for r in con.execute("SELECT video_id, track_key FROM latest_tracks").fetchall()}
    finally:
        con.close()
    if latest_only:
        units = [(v, k) for v, k in units if latest.get(v) == k]
    out = []
    located: dict[str, tuple[str | None, str | None, str]] = {}
    for video_id, track_key in units:
        if video_id not in located:
            uri, size = videos.get(video_id, (None, None))
            found = locate_source(known_uris(store, video_id, uri), size, cache_dir)
            located[video_id] = (found.path, found.reason, found.uri or uri or video_id)
        path, reason, uri = located[video_id]
        out.append(ThumbnailTarget(video_id, track_key, uri, path, reason))
    return out


@dataclass
class ThumbnailsSummary:
    """What one `pixelrefer thumbnails` run did (counts of units, and the reasons of the others)."""

    done: int = 0
    already: int = 0
    objects: int = 0
    missing: list[str] | None = None
    failed: list[str] | None = None
    seconds: float = 0.0

    def text(self) -> str:
        lines = [f"thumbnails: {self.done} tracking(s) done ({self.objects} objects), {self.already} already done, "
                 f"{len(self.missing or [])} skipped (source gone), {len(self.failed or [])} failed, "
                 f"in {self.seconds:.1f} s"]
        lines += [f"  skipped {m}" for m in self.missing or []]
        lines += [f"  failed {f}" for f in self.failed or []]
        return "\n".join(lines)


def run_store_thumbnails(store: Store, video_ids: Sequence[str] | None = None, latest_only: bool = False,
                         echo: Callable[[str], None] | None = None) -> ThumbnailsSummary:
    """Thumbnails of every tracking of `store` (or of `video_ids`) not done yet, recorded as a catalog run
    of kind 'thumbnails' (with heartbeats for its claims); refreshes the views at the end."""
    import os
    import socket
    import time
    import uuid

    from flows.run_context import Heartbeat
    from flows.stages.units import error_text

    started = time.perf_counter()
    summary = ThumbnailsSummary(missing=[], failed=[])
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    run_id = store.catalog.start_run("thumbnails", {"store": store.root, "videos": list(video_ids or [])},
                                     host=socket.gethostname(), pid=os.getpid())
    status = "failed"
    try:
        with Heartbeat(store, run_id, worker, every_s=DEFAULT_LEASE_S / 4):
            targets = store_targets(store, os.path.join(store.root, "cache", "remote"), video_ids, latest_only)
            for i, target in enumerate(targets, 1):
                try:
                    outcome = make_thumbnails(store, target, worker)
                except Exception as exc:  # recorded as retryable by run_unit; the other videos go on
                    outcome = ThumbnailsOutcome(target.video_id, target.track_key, target.uri, Status.FAILED,
                                                error=error_text(exc))
                _count_outcome(summary, outcome)
                if echo is not None and (outcome.status != Status.SKIPPED or outcome.error):
                    note = f"{outcome.n_objects} object(s)" if outcome.status == Status.DONE else outcome.error
                    echo(f"[{i}/{len(targets)}] thumbnails {target.uri}: {outcome.status} ({note})")
            store.refresh_views()
        status = "ok"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        summary.seconds = time.perf_counter() - started
        store.catalog.finish_run(run_id, status, {"seconds": summary.seconds, "videos_done": summary.done,
                                                  "objects": summary.objects, "failures": summary.failed,
                                                  "skipped": summary.missing})
    return summary


def _count_outcome(summary: ThumbnailsSummary, outcome: ThumbnailsOutcome) -> None:
    assert summary.missing is not None and summary.failed is not None
    if outcome.status == Status.DONE:
        summary.done += 1
        summary.objects += outcome.n_objects
    elif outcome.status == Status.SKIPPED and outcome.error:
        summary.missing.append(f"{outcome.uri}: {outcome.error}")
    elif outcome.status == Status.SKIPPED:
        summary.already += 1
    elif outcome.status == Status.FAILED:
        summary.failed.append(f"{outcome.uri}: {outcome.error}")
