"""Building the static report: Jinja2 templates (package data) over the store's records, written into a
fresh folder that then replaces the previous report at once (flows.report.publish).

Layout of a report::

    index.html, index-2.html ...      the videos, `page_size` per page (+ failed files, run history)
    videos/<video_id>.html (-N.html)  one page per video, `objects_per_page` objects per page
    img/<video_id>/<object>.jpg       crops, and frame-<idx>.jpg reduced frames, from object_thumbnails
    data/objects.js                   every object's caption/answer text, for the index's search box
    static/report.css, report.js      the only style and script (no CDN; opens from file://)

Images are written from the thumbnails in the store (no video is decoded); overlay clips are linked from
the overlays folder where `pixelrefer render` put them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from flows.report.data import (
    ObjectEntry,
    ReportData,
    ThumbRow,
    VideoEntry,
    load_report_data,
    video_boxes,
    video_thumbnails,
)
from flows.report.overlays import clip_file, default_overlays_dir, read_sidecar
from flows.report.publish import report_folder
from flows.report.sources import locate_source
from pixelrefer_core.render import count_series, hex_color, object_color, svg_points, trajectories
from storage import Store

__all__ = ["ReportResult", "build_report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportResult:
    """The report written: its index file, what it shows, its size on disk and the build time."""

    out: str
    index: str
    videos: int
    objects: int
    pages: int
    files: int
    bytes: int
    seconds: float


def _env() -> Environment:
    return Environment(loader=PackageLoader("flows.report", "templates"), autoescape=select_autoescape(["html"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _size(v: VideoEntry) -> str:
    parts = []
    if v.width and v.height:
        parts.append(f"{v.width}×{v.height}")
    if v.size_bytes:
        parts.append(f"{v.size_bytes / 1e6:.1f} MB" if v.size_bytes >= 1e5 else f"{v.size_bytes / 1e3:.0f} KB")
    return " · ".join(parts) or "unknown"


_DIRECTIONS = ["right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right"]


def _direction(o: ObjectEntry) -> str:
    if o.direction_deg is None or (o.mean_speed_px_s is not None and o.mean_speed_px_s < 1e-6):
        return "not moving"
    deg = float(o.direction_deg) % 360
    return f"{deg:.0f}° ({_DIRECTIONS[int((deg + 22.5) // 45) % 8]})"


def _speed(o: ObjectEntry) -> str:
    return "unknown" if o.mean_speed_px_s is None else f"{o.mean_speed_px_s:.1f} px/s"


def _page_name(stem: str, n: int) -> str:
    return f"{stem}.html" if n == 1 else f"{stem}-{n}.html"


class _Writer:
    """Builds every page of one report into `build` (the pages' final home is `out`)."""

    def __init__(self, store: Store, data: ReportData, build: str, out: str, overlays: str, page_size: int,
                 objects_per_page: int, progress: Callable[[str], None] | None):
        self.store, self.data, self.build, self.out, self.overlays = store, data, build, out, overlays
        self.page_size, self.objects_per_page, self.progress = page_size, objects_per_page, progress
        self.env = _env()
        self.pages = 0
        self.search: list[list[Any]] = []
        self.posters: dict[str, tuple[str, int, int]] = {}
        self.paths: dict[str, list[str]] = {}  # video_id -> every path the catalog saw it at
        for p in store.catalog.video_paths():
            self.paths.setdefault(p.video_id, []).append(p.uri)
        self.common = dict(store_name=os.path.basename(store.root.rstrip("/")), store_path=store.root,
                           built_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                           views_built_at=data.views_built_at, where=data.where)

    def _write(self, rel: str, template: str, **values: Any) -> None:
        path = os.path.join(self.build, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        html = self.env.get_template(template).render(**self.common, **values)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(html)
        self.pages += 1

    def _image(self, rel: str, data: bytes) -> None:
        path = os.path.join(self.build, rel)
        if not os.path.exists(path):
            with open(path, "wb") as fh:
                fh.write(data)

    def _clip(self, v: VideoEntry) -> tuple[str | None, str]:
        """(relative link from a video page, reason when there is none)."""
        side = read_sidecar(self.overlays, v.video_id)
        if side is not None and side.track_key == v.track_key:
            return os.path.relpath(clip_file(self.overlays, v.video_id), os.path.join(self.out, "videos")), ""
        uris = ([v.uri] if v.uri else []) + [u for u in self.paths.get(v.video_id, []) if u != v.uri]
        found = locate_source(uris, v.size_bytes, "")
        if found.path is None:
            return None, f"{found.reason}. The thumbnails above come from the store."
        stale = " (the clip there is of an older tracking)" if side is not None else ""
        return None, (f"not rendered yet{stale}: pixelrefer render --store {self.store.root} --video {v.video_id[:12]}"
                      + (f" --out {self.overlays}" if self.overlays != default_overlays_dir(self.store.root) else ""))

    def video_pages(self, v: VideoEntry) -> None:
        thumbs: dict[int, ThumbRow] | None = None
        boxes = []
        if v.track_key is not None:
            thumbs = video_thumbnails(self.store, v.video_id, v.track_key)
            boxes = video_boxes(self.store, v.video_id, v.track_key)
        img_dir = f"img/{v.video_id}"
        if thumbs:
            os.makedirs(os.path.join(self.build, img_dir), exist_ok=True)
        shown = {o.object_id for o in v.objects}
        boxes = [b for b in boxes if b.object_id in shown]
        poster = None
        if thumbs:
            best = max((o for o in v.objects if o.object_id in thumbs), key=lambda o: (o.max_area or 0, -o.object_id),
                       default=None)
            if best is not None:
                pt = thumbs[best.object_id]
                poster = (f"{img_dir}/frame-{pt.frame_idx}.jpg", pt.frame_w, pt.frame_h)
                self._image(poster[0], pt.frame_jpeg)
                self.posters[v.video_id] = poster
        clip, clip_reason = self._clip(v)
        duration = v.duration
        plot_w, plot_h = int(v.width or 320), int(v.height or 240)
        paths = []
        for oid, pts in trajectories(boxes).items():
            paths.append(dict(object_id=oid, hex=hex_color(object_color(oid)), points=svg_points([(x, y) for _, x, y in pts]),
                              end_x=f"{pts[-1][1]:.1f}", end_y=f"{pts[-1][2]:.1f}"))
        series = count_series(boxes)
        cw, ch = 720, 120
        peak = max(series.peak, 1)
        steps: list[tuple[float, float]] = [(0.0, 0.0)]
        for at, n in zip(series.times, series.counts, strict=True):
            steps += [(at, steps[-1][1]), (at, float(n))]
        steps.append((duration, steps[-1][1]))
        count_plot = dict(w=cw, h=ch, peak=series.peak,
                          points=svg_points([(min(at, duration) / duration * (cw - 8) + 4, ch - 6 - c / peak * (ch - 20))
                                             for at, c in steps]))
        ticks = [dict(pos=f"{i / 4 * 100:.1f}", label=_duration(duration * i / 4)) for i in range(5)]
        pages = max(1, math.ceil(len(v.objects) / self.objects_per_page))
        stem = f"videos/{v.video_id}"
        for page in range(1, pages + 1):
            chunk = v.objects[(page - 1) * self.objects_per_page: page * self.objects_per_page]
            objects = []
            for o in chunk:
                t: ThumbRow | None = thumbs.get(o.object_id) if thumbs else None
                crop = None
                if t is not None:  # the crop; of the reduced frames only the video's poster (report size)
                    crop = f"{img_dir}/{o.object_id}.jpg"
                    self._image(crop, t.crop_jpeg)
                left = max(0.0, min(100.0, o.t_start / duration * 100))
                width = max(0.6, min(100.0 - left, (o.t_end - o.t_start) / duration * 100))
                objects.append(dict(
                    entry=o, left=f"{left:.2f}", width=f"{width:.2f}",
                    span_text=f"{o.t_start:.2f} s – {o.t_end:.2f} s", speed_text=_speed(o), direction_text=_direction(o),
                    crop=f"../{crop}" if crop else None, crop_w=t.crop_w if t else 0, crop_h=t.crop_h if t else 0,
                    best_frame=t.frame_idx if t else None, best_t=t.t if t else 0.0))
                self.search.append([_page_name(stem, page), o.object_id, o.caption or "", o.search_text,
                                    crop or "", v.name, o.hex])
            self._write(_page_name(stem, page), "video.html", root="../", v=v, objects=objects, page=page, pages=pages,
                        page_href=lambda n, s=v.video_id: _page_name(s, n), clip=clip, clip_reason=clip_reason,
                        duration_text=_duration(v.duration_s), size_text=_size(v), ticks=ticks,
                        thumbs_available=thumbs is not None, poster=f"../{poster[0]}" if poster else None,
                        plot_w=plot_w, plot_h=plot_h, paths=paths, stroke=max(1.5, plot_w / 320),
                        count_plot=count_plot)

    def index_pages(self) -> None:
        videos = self.data.videos
        pages = max(1, math.ceil(len(videos) / self.page_size))
        n_objects = sum(len(v.objects) for v in videos)
        for page in range(1, pages + 1):
            rows = []
            for v in videos[(page - 1) * self.page_size: page * self.page_size]:
                poster = self.posters.get(v.video_id)
                rows.append(dict(entry=v, href=f"videos/{v.video_id}.html", duration_text=_duration(v.duration_s),
                                 size_text=_size(v), poster=poster[0] if poster else None,
                                 poster_w=120, poster_h=round(120 * poster[2] / poster[1]) if poster else 0))
            self._write(_page_name("index", page), "index.html", root="", videos=rows, page=page, pages=pages,
                        page_href=lambda n: _page_name("index", n), n_videos=len(videos),
                        n_videos_total=self.data.n_videos_total, n_objects=n_objects, failed=self.data.failed,
                        runs=self.data.runs)

    def static(self) -> None:
        target = os.path.join(self.build, "static")
        os.makedirs(target)
        for entry in resources.files("flows.report").joinpath("static").iterdir():
            if entry.is_file() and not entry.name.startswith("."):
                with resources.as_file(entry) as src:
                    shutil.copyfile(src, os.path.join(target, entry.name))
        os.makedirs(os.path.join(self.build, "data"))
        with open(os.path.join(self.build, "data", "objects.js"), "w", encoding="utf-8") as fh:
            fh.write("window.PIXELREFER_OBJECTS = ")
            json.dump(self.search, fh, ensure_ascii=True, separators=(",", ":"))
            fh.write(";\n")


def _disk_usage(folder: str) -> tuple[int, int]:
    files = size = 0
    for d, _, names in os.walk(folder):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(d, name))
    return files, size


def build_report(store: Store, out: str, *, where: str | None = None, overlays: str | None = None,
                 page_size: int = 50, objects_per_page: int = 200,
                 progress: Callable[[str], None] | None = None) -> ReportResult:
    """Write the report of `store` to the folder `out` (replaced whole, atomically); see module docstring.

    `where`: only objects matching this --where predicate (PredicateError otherwise); `overlays`: the
    folder of `pixelrefer render`'s clips (default `<store>-overlays`). Raises ReportTargetError when `out`
    is a file or a folder of other files. Reads the store only.
    """
    started = time.perf_counter()
    out = os.path.abspath(out)
    overlays = os.path.abspath(overlays or default_overlays_dir(store.root))
    if os.path.commonpath([overlays, out]) == out:
        from flows.report.publish import ReportTargetError

        raise ReportTargetError(f"overlays folder {overlays} is inside the report folder {out}, which every build "
                                "replaces whole: render the clips elsewhere (default: beside the store)")
    data = load_report_data(store, where)
    with report_folder(out) as build:
        writer = _Writer(store, data, build, out, overlays, page_size, objects_per_page, progress)
        for i, v in enumerate(data.videos, 1):
            writer.video_pages(v)
            if progress is not None and i % 100 == 0:
                progress(f"report: {i}/{len(data.videos)} video pages")
        writer.index_pages()
        writer.static()
        files, size = _disk_usage(build)
        pages = writer.pages
    n_objects = sum(len(v.objects) for v in data.videos)
    return ReportResult(out=out, index=os.path.join(out, "index.html"), videos=len(data.videos), objects=n_objects,
                        pages=pages, files=files, bytes=size, seconds=time.perf_counter() - started)
