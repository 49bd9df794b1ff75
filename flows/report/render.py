"""`pixelrefer render`'s work: one overlay clip per video of the store, from its source file and the stored
masks of its latest tracking (pixelrefer_core.render.render_clip), into the overlays folder.

Idempotent: a clip whose sidecar says it was made from the same tracking, objects, size and captions is
left as it is (`force` redoes it). Atomic: the MP4 is written under a temporary name and renamed, then
its sidecar. A video whose source file is gone is skipped with the reason; nothing in the store changes.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow.parquet as pq

from flows.report.overlays import ClipSidecar, captions_digest, clip_file, read_sidecar, write_sidecar
from flows.report.sources import known_uris, locate_source
from pixelrefer_core.render import MaskRecord, render_clip
from storage import Store, StoreError

__all__ = ["RenderOutcome", "StoredVideo", "UnknownVideoError", "render_video", "select_videos"]

log = logging.getLogger(__name__)


class UnknownVideoError(StoreError):
    """--video matches no video of the store."""


@dataclass(frozen=True)
class StoredVideo:
    """A video of the store with its latest tracking (None: not tracked)."""

    video_id: str
    uri: str
    size_bytes: int | None
    track_key: str | None


@dataclass(frozen=True)
class RenderOutcome:
    """status: 'done' | 'up to date' | 'skipped' (with the reason); path of the clip when there is one."""

    video_id: str
    uri: str
    status: str
    path: str | None = None
    reason: str | None = None
    frames: int = 0
    seconds: float = 0.0


def select_videos(store: Store, pattern: str | None) -> list[StoredVideo]:
    """The store's videos matching `pattern`: a video id (or a prefix of at least 6 characters), or a glob
    over the uri or its file name (None: every video). UnknownVideoError when nothing matches."""
    con = store.connect(refresh=False)
    try:
        rows = con.execute("SELECT v.video_id, v.uri, v.size_bytes, l.track_key FROM videos v "
                           "LEFT JOIN latest_tracks l USING (video_id) ORDER BY v.uri, v.video_id").fetchall()
    finally:
        con.close()
    videos = [StoredVideo(*r) for r in rows]
    if pattern is None:
        return videos

    def matches(v: StoredVideo) -> bool:
        if v.video_id == pattern or (len(pattern) >= 6 and v.video_id.startswith(pattern)):
            return True
        return fnmatch.fnmatch(v.uri, pattern) or fnmatch.fnmatch(os.path.basename(v.uri), pattern)

    chosen = [v for v in videos if matches(v)]
    if not chosen:
        known = ", ".join(os.path.basename(v.uri) for v in videos[:5]) or "none"
        raise UnknownVideoError(f"--video {pattern!r} matches no video of store {store.root} (a video id, a prefix "
                                f"of 6+ characters, or a glob over the file names; videos: {known}"
                                f"{', ...' if len(videos) > 5 else ''})")
    return chosen


def _records(store: Store, video_id: str, track_key: str, objects: set[int] | None) -> list[MaskRecord]:
    names = ["object_id", "frame_idx", "x0", "y0", "x1", "y1", "mask_rle", "mask_h", "mask_w"]
    with store.fs.open(store.unit_path("object_frames", video_id, track_key), "rb") as fh:
        cols = pq.ParquetFile(fh).read(columns=names).to_pydict()
    out = []
    for i, oid in enumerate(cols["object_id"]):
        if objects is not None and oid not in objects:
            continue
        out.append(MaskRecord(int(oid), int(cols["frame_idx"][i]),
                              (cols["x0"][i], cols["y0"][i], cols["x1"][i], cols["y1"][i]),
                              cols["mask_rle"][i], int(cols["mask_h"][i] or 0), int(cols["mask_w"][i] or 0)))
    return out


def _captions(store: Store, video_id: str) -> dict[int, str | None]:
    con = store.connect(refresh=False)
    try:
        rows = con.execute("SELECT object_id, caption FROM object_captions WHERE video_id = ?", [video_id]).fetchall()
    finally:
        con.close()
    return {int(oid): cap for oid, cap in rows}


def render_video(store: Store, video: StoredVideo, out_dir: str, *, objects: Sequence[int] | None = None,
                 max_side: int | None = None, force: bool = False, cache_dir: str = "",
                 on_frames: Callable[[int], None] | None = None, on_start: Callable[[int], None] | None = None
                 ) -> RenderOutcome:
    """Render one video's overlay clip into `out_dir` (see module docstring). `on_start(total_frames)` is
    called once the source is found, `on_frames(n)` after every chunk (progress)."""
    if video.track_key is None:
        return RenderOutcome(video.video_id, video.uri, "skipped", reason="not tracked yet")
    wanted = None if objects is None else {int(o) for o in objects}
    captions = _captions(store, video.video_id)
    if wanted is not None:
        captions = {k: v for k, v in captions.items() if k in wanted}
    digest = captions_digest(captions)
    final = clip_file(out_dir, video.video_id)
    old = read_sidecar(out_dir, video.video_id)
    chosen = None if wanted is None else sorted(wanted)
    if not force and old is not None and (old.track_key, old.objects, old.max_side, old.captions) == \
            (video.track_key, chosen, max_side, digest):
        return RenderOutcome(video.video_id, video.uri, "up to date", path=final, frames=old.frames)
    found = locate_source(known_uris(store, video.video_id, video.uri), video.size_bytes, cache_dir)
    if found.path is None:
        return RenderOutcome(video.video_id, video.uri, "skipped", reason=found.reason)
    from pixelrefer_core.video import probe

    info = probe(found.path)
    if on_start is not None:
        on_start(info.num_frames)
    records = _records(store, video.video_id, video.track_key, wanted)
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f".{video.video_id}.{uuid.uuid4().hex}.mp4.partial")
    try:
        result = render_clip(found.path, tmp, records, captions, max_side=max_side, info=info, on_frames=on_frames)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    write_sidecar(out_dir, ClipSidecar(
        video_id=video.video_id, track_key=video.track_key, objects=chosen, max_side=max_side, captions=digest,
        frames=result.frames, width=result.width, height=result.height, fps=result.fps, source=found.uri or found.path,
        rendered_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
    return RenderOutcome(video.video_id, video.uri, "done", path=final, frames=result.frames, seconds=result.seconds)
