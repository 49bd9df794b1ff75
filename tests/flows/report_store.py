"""A store written through the storage API from generated scenes whose masks are known exactly: the
reference the thumbnails, overlay, report and export tests compare against (no tracker in between)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from pixelrefer_core.masks import encode_rle, mask_box
from pixelrefer_core.synthetic import SyntheticObject, render_scene, write_video
from pixelrefer_core.video import fingerprint
from storage import Store, table_from_records

TRACK_KEY = "trk0123456789abcdef"
T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@dataclass
class SceneVideo:
    """One generated video in the store: its file, frames, per-frame masks {object_id: mask}, sample step."""

    name: str
    path: str
    video_id: str
    fps: float
    frames: list[np.ndarray]
    masks: list[dict[int, np.ndarray]]
    step: int
    captions: dict[int, str] = field(default_factory=dict)

    def sampled(self) -> list[int]:
        return list(range(0, len(self.frames), self.step))

    def stored_mask(self, object_id: int, frame_idx: int) -> np.ndarray | None:
        """The mask the store holds for the object on a sampled frame (None when absent there)."""
        return self.masks[frame_idx].get(object_id) if frame_idx % self.step == 0 else None


SCENES = {
    # name: (objects, frames, fps, step); objects stay in the upper half, so the bottom rows are far from them
    "left.mp4": ([SyntheticObject("red", "rect", 24, start=(130, 30), velocity=(-2.0, 0.0)),
                  SyntheticObject("blue", "circle", 20, start=(40, 40), velocity=(-0.5, 0.0), enter_frame=6)],
                 30, 10.0, 3),
    "up.mp4": ([SyntheticObject("green", "rect", 22, start=(80, 50), velocity=(0.0, -1.0))], 20, 8.0, 2),
}


def write_scene_store(root: str, videos_dir: str, *, describe: bool = True, names=tuple(SCENES)) -> list[SceneVideo]:
    """A store at `root` with the scenes `names` (files under `videos_dir`), their objects and timelines
    (every `step`-th frame, exact masks), captions for object 1 of each video when `describe`, and
    done catalog units for ingest and track (as a run would leave them). Views refreshed."""
    os.makedirs(videos_dir, exist_ok=True)
    store = Store.open(root)
    out = []
    for name in names:
        objects, n, fps, step = SCENES[name]
        frames, raw = render_scene(objects, n, 160, 120, seed=len(name))
        masks = [{i + 1: m for i, m in per.items() if m.any()} for per in raw]
        path = os.path.join(videos_dir, name)
        if not os.path.exists(path):
            write_video(path, frames, fps=fps)
        vid = fingerprint(path)
        scene = SceneVideo(name, path, vid, fps, frames, masks, step)
        _write_video(store, scene, n)
        if describe:
            scene.captions = {1: f"a {objects[0].color} {objects[0].shape} in {name}"}
            _write_captions(store, scene)
        out.append(scene)
    store.refresh_views()
    store.close()
    return out


def _write_video(store: Store, s: SceneVideo, n: int) -> None:
    h, w = s.frames[0].shape[:2]
    store.write_unit("videos", s.video_id, "probe", table_from_records("videos", [dict(
        video_id=s.video_id, uri=s.path, size_bytes=os.path.getsize(s.path), fps=s.fps, num_frames=n,
        duration_s=n / s.fps, width=w, height=h, probed_at=T0, decoded_frames=n)]))
    store.catalog.mark_done("ingest", s.video_id, "probe", rows=1)
    store.catalog.record_video_path(s.video_id, s.path, os.path.getsize(s.path))
    frames, objects = [], []
    ids = sorted({oid for per in s.masks for oid in per})
    for oid in ids:
        seen = [f for f in s.sampled() if oid in s.masks[f]]
        for f in seen:
            m = s.masks[f][oid]
            x0, y0, x1, y1 = mask_box(m)
            frames.append(dict(video_id=s.video_id, track_key=TRACK_KEY, object_id=oid, frame_idx=f, t=f / s.fps,
                               x0=x0, y0=y0, x1=x1, y1=y1, area=int(m.sum()), score=0.5 + 0.01 * f,
                               mask_rle=encode_rle(m), mask_h=h, mask_w=w))
        objects.append(dict(video_id=s.video_id, track_key=TRACK_KEY, object_id=oid, first_frame=seen[0],
                            last_frame=seen[-1], t_start=seen[0] / s.fps, t_end=seen[-1] / s.fps,
                            frames_present=len(seen), max_area=max(int(s.masks[f][oid].sum()) for f in seen),
                            mean_area_frac=0.02, mean_score=0.8, discovered_by="auto", color="red",
                            mean_speed_px_s=20.0, direction_deg=180.0, tracked_at=T0))
    store.write_unit("object_frames", s.video_id, TRACK_KEY, table_from_records("object_frames", frames))
    store.write_unit("objects", s.video_id, TRACK_KEY, table_from_records("objects", objects))
    store.catalog.mark_done("track", s.video_id, TRACK_KEY, rows={"objects": len(objects), "object_frames": len(frames)})


def _write_captions(store: Store, s: SceneVideo) -> None:
    rows = [dict(video_id=s.video_id, track_key=TRACK_KEY, object_ids=[oid], describe_key="dk-" + s.video_id[:8],
                 prompt_id="caption-short", prompt="Describe the object.", task="caption", answer=text,
                 model_id="tiny-model@1", frames_used=[0], n_tokens=4, latency_ms=1.0, run_id="r1", created_at=T0)
            for oid, text in s.captions.items()]
    store.write_unit("descriptions", s.video_id, "dk-" + s.video_id[:8], table_from_records("descriptions", rows))
    store.catalog.mark_done("describe", s.video_id, "dk-" + s.video_id[:8], rows=len(rows))


def tree_digest(root: str) -> dict[str, str]:
    """relative path -> sha256 of every file under `root` (what 'nothing in the store changed' compares).

    SQLite's shared-memory index (`-shm`) and an empty write-ahead log (`-wal`) are left out: any reader
    of a WAL database makes them, and they hold no data (a non-empty log would be a write, and counts)."""
    out = {}
    for d, _, names in os.walk(root):
        for name in names:
            path = os.path.join(d, name)
            if name.endswith("-shm") or (name.endswith("-wal") and os.path.getsize(path) == 0):
                continue
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out
