"""What the report shows, read from a store without writing to it: typed records per video and object.

Everything small (videos, the latest tracking of each video, objects, descriptions, catalog failures and
runs) is read once through the views file and the catalog; per-video bulk (thumbnail JPEGs, timeline
boxes) is read from that video's unit files only when its page is built (`video_thumbnails`,
`video_boxes`), so memory stays one video's worth whatever the archive's size.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from pixelrefer_core.render import BoxRow, hex_color, object_color
from storage import Store

__all__ = ["Description", "FailedVideo", "ObjectEntry", "ReportData", "RunEntry", "ThumbRow", "VideoEntry",
           "load_report_data", "open_store_for_reading", "video_boxes", "video_thumbnails"]


@dataclass(frozen=True)
class Description:
    """One answer about an object: the prompt asked, its task, the answer, the model, when, about whom."""

    task: str
    prompt_id: str
    prompt: str
    answer: str | None
    model_id: str | None
    created_at: str
    object_ids: tuple[int, ...]


@dataclass
class ObjectEntry:
    """One object of a video's latest tracking, with every answer about it (newest first)."""

    object_id: int
    first_frame: int
    last_frame: int
    t_start: float
    t_end: float
    frames_present: int
    color_name: str | None
    label: str | None
    discovered_by: str | None
    mean_speed_px_s: float | None
    direction_deg: float | None
    mean_score: float | None
    max_area: int | None
    caption: str | None = None
    descriptions: list[Description] = field(default_factory=list)

    @property
    def hex(self) -> str:
        """The object's colour in every overlay, outline, bar and plot."""
        return hex_color(object_color(self.object_id))

    @property
    def search_text(self) -> str:
        """What the filter box matches: id, label, colour name, caption and every answer (lower case)."""
        parts = [str(self.object_id), self.label or "", self.color_name or "", self.caption or ""]
        parts += [d.answer or "" for d in self.descriptions]
        return " ".join(" ".join(parts).lower().split())


@dataclass
class VideoEntry:
    """One probed video. state: 'done' | 'partial' | 'failed' | 'not tracked'; reason says why."""

    video_id: str
    uri: str
    fps: float | None
    num_frames: int | None
    duration_s: float | None
    width: int | None
    height: int | None
    size_bytes: int | None
    partial_reason: str | None
    decoded_frames: int | None
    track_key: str | None
    state: str
    reason: str | None = None
    objects: list[ObjectEntry] = field(default_factory=list)
    n_objects_total: int = 0  # before a --where selection

    @property
    def name(self) -> str:
        return os.path.basename(self.uri.rstrip("/")) or self.video_id[:12]

    @property
    def duration(self) -> float:
        """Seconds the timeline spans: the probed duration, else the last object's end."""
        if self.duration_s and self.duration_s > 0:
            return float(self.duration_s)
        return max((o.t_end for o in self.objects), default=0.0) or 1.0


@dataclass(frozen=True)
class FailedVideo:
    """A file that never became a video of the store (its ingest failed), with the reason."""

    uri: str
    video_id: str
    reason: str


@dataclass(frozen=True)
class RunEntry:
    id: str
    kind: str
    status: str
    started_at: str
    seconds: float | None
    videos_done: int | None
    videos_failed: int | None
    objects: int | None
    descriptions: int | None


@dataclass
class ReportData:
    videos: list[VideoEntry]
    failed: list[FailedVideo]
    runs: list[RunEntry]
    where: str | None
    views_built_at: str | None
    n_videos_total: int = 0


@dataclass(frozen=True)
class ThumbRow:
    object_id: int
    frame_idx: int
    t: float
    crop_jpeg: bytes
    crop_w: int
    crop_h: int
    frame_jpeg: bytes
    frame_w: int
    frame_h: int


def open_store_for_reading(store_dir: str | None, catalog_url: str | None = None) -> Store:
    """The store opened read-only (render and report write nothing to it); StoreError when there is none."""
    from storage import StoreError

    if not store_dir:
        raise StoreError("give --store DIR (or set PIXELREFER_STORE)")
    from flows.store_location import missing_store

    if (why := missing_store(store_dir)) is not None:
        raise StoreError(why)
    return Store.open(store_dir, catalog_url=catalog_url, create=False, read_only=True)


def _stamp(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if value.tzinfo is None or value.utcoffset() == dt.timedelta(0) else "")
    return "" if value is None else str(value)


def _rows(con: Any, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _info(con: Any) -> str | None:
    try:
        row = con.execute("SELECT value FROM _pixelrefer.info WHERE key = 'built_at'").fetchone()
    except Exception:  # noqa: BLE001 - a views file of another format: the time is only informative
        return None
    return row[0] if row else None


def load_report_data(store: Store, where: str | None = None, run_limit: int = 20) -> ReportData:
    """Read what the report shows (see module docstring). `where`: a --where predicate over objects/videos
    (validated by storage.predicates; PredicateError otherwise): only matching objects, and only videos
    that have some, are kept."""
    selected = None
    if where:
        from storage.predicates import select_objects

        table = select_objects(store, where)
        selected = set(zip(table.column("video_id").to_pylist(), table.column("object_id").to_pylist(), strict=True))
    con = store.connect(refresh=False)
    try:
        videos = _rows(con, "SELECT * FROM videos ORDER BY uri, video_id")
        latest = {r["video_id"]: r["track_key"] for r in _rows(con, "SELECT video_id, track_key FROM latest_tracks")}
        objects = _rows(con, "SELECT * FROM object_captions ORDER BY video_id, object_id")
        descriptions = _rows(con, "SELECT d.video_id, d.object_ids, d.task, d.prompt_id, d.prompt, d.answer, "
                                  "d.model_id, d.created_at FROM descriptions d JOIN latest_tracks USING "
                                  "(video_id, track_key) ORDER BY d.created_at DESC NULLS LAST, d.describe_key")
        built_at = _info(con)
    finally:
        con.close()
    by_video: dict[str, list[ObjectEntry]] = {}
    index: dict[tuple[str, int], ObjectEntry] = {}
    for o in objects:
        entry = ObjectEntry(
            object_id=int(o["object_id"]), first_frame=int(o["first_frame"]), last_frame=int(o["last_frame"]),
            t_start=float(o["t_start"]), t_end=float(o["t_end"]), frames_present=int(o["frames_present"]),
            color_name=o.get("color"), label=o.get("label"), discovered_by=o.get("discovered_by"),
            mean_speed_px_s=o.get("mean_speed_px_s"), direction_deg=o.get("direction_deg"),
            mean_score=o.get("mean_score"), max_area=o.get("max_area"), caption=o.get("caption"))
        by_video.setdefault(o["video_id"], []).append(entry)
        index[(o["video_id"], entry.object_id)] = entry
    for d in descriptions:
        ids = tuple(int(i) for i in d["object_ids"] or ())
        desc = Description(d["task"], d["prompt_id"], d["prompt"], d["answer"], d["model_id"], _stamp(d["created_at"]), ids)
        for oid in ids:
            if (about := index.get((d["video_id"], oid))) is not None:
                about.descriptions.append(desc)
    track_failures = {u.video_id: u.error for u in store.catalog.units(stage="track", state="failed")}
    entries = []
    for v in videos:
        vid = v["video_id"]
        key = latest.get(vid)
        objs = by_video.get(vid, [])
        total = len(objs)
        if selected is not None:
            objs = [o for o in objs if (vid, o.object_id) in selected]
            if not objs:
                continue
        if key is not None:
            state, reason = ("partial", v["partial_reason"]) if v.get("partial_reason") else ("done", None)
        elif vid in track_failures:
            state, reason = "failed", track_failures[vid]
        else:
            state, reason = "not tracked", "no tracking of this video is done yet"
        entries.append(VideoEntry(
            video_id=vid, uri=v["uri"], fps=v["fps"], num_frames=v["num_frames"], duration_s=v["duration_s"],
            width=v["width"], height=v["height"], size_bytes=v["size_bytes"], partial_reason=v.get("partial_reason"),
            decoded_frames=v.get("decoded_frames"), track_key=key, state=state, reason=reason, objects=objs,
            n_objects_total=total))
    known = {v["video_id"] for v in videos}
    failed = [] if selected is not None else [
        FailedVideo(u.uri or u.video_id, u.video_id, u.error or "failed")
        for u in store.catalog.units(stage="ingest", state="failed") if u.video_id not in known]
    runs = [RunEntry(r.id, r.kind, r.effective_status, _stamp(r.started_at), (r.summary or {}).get("seconds"),
                     (r.summary or {}).get("videos_done"), (r.summary or {}).get("videos_failed"),
                     (r.summary or {}).get("objects"), (r.summary or {}).get("descriptions_written"))
            for r in store.catalog.runs(limit=run_limit)]
    return ReportData(entries, sorted(failed, key=lambda f: f.uri), runs, where, built_at, n_videos_total=len(videos))


def _unit_table(store: Store, table: str, video_id: str, track_key: str, columns: list[str]) -> Any:
    if not store.has_unit(table, video_id, track_key):
        return None
    with store.fs.open(store.unit_path(table, video_id, track_key), "rb") as fh:
        return pq.ParquetFile(fh).read(columns=columns)


def video_thumbnails(store: Store, video_id: str, track_key: str) -> dict[int, ThumbRow] | None:
    """object_id -> thumbnail of one tracking (None: its thumbnails unit is not written yet)."""
    names = ["object_id", "frame_idx", "t", "crop_jpeg", "crop_w", "crop_h", "frame_jpeg", "frame_w", "frame_h"]
    table = _unit_table(store, "object_thumbnails", video_id, track_key, names)
    if table is None:
        return None
    return {int(r["object_id"]): ThumbRow(**r) for r in table.to_pylist()}


def video_boxes(store: Store, video_id: str, track_key: str) -> list[BoxRow]:
    """Every timeline record's box of one tracking (no masks), for the trajectory and count plots."""
    names = ["object_id", "frame_idx", "t", "x0", "y0", "x1", "y1"]
    table = _unit_table(store, "object_frames", video_id, track_key, names)
    return [] if table is None else [BoxRow(**r) for r in table.to_pylist()]
