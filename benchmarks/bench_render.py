"""Render and report figures: overlay frames/s against plain decode + encode of the same video in the same
run (their ratio is the cost of drawing), and the report's build time and size for a synthetic store.

    .venv/bin/python benchmarks/bench_render.py                          # 640x360, 300 frames; 1000 x 20 store
    .venv/bin/python benchmarks/bench_render.py --videos 100 --objects 20 --skip-render
    .venv/bin/python benchmarks/bench_render.py --materialize-thumbnails  # views file size/refresh with the
                                                                          # thumbnails copied into it

The synthetic store is written through the storage API (videos, objects, a timeline of --frames records per
object with real RLE masks, one caption per object, and thumbnails of realistic JPEG sizes); its source
videos do not exist, so every page says why its overlay is unavailable (the report still reads the store
for every video, as it does for real ones).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time

import numpy as np

from pixelrefer_core.masks import encode_rle, mask_box
from pixelrefer_core.render import MaskRecord, make_thumbnail, object_color, render_clip
from pixelrefer_core.synthetic import SyntheticObject, render_scene, write_video

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def bench_render(folder: str, width: int, height: int, frames: int, step: int) -> None:
    objects = [SyntheticObject("red", "rect", height // 5, start=(width * 0.8, height * 0.3), velocity=(-3, 0)),
               SyntheticObject("blue", "circle", height // 6, start=(width * 0.2, height * 0.6), velocity=(2, -0.5)),
               SyntheticObject("green", "rect", height // 7, start=(width * 0.5, height * 0.1), velocity=(0, 1))]
    video, masks = render_scene(objects, frames, width, height, seed=1)
    src = os.path.join(folder, "src.mp4")
    write_video(src, video, fps=30.0)
    records = [MaskRecord(i + 1, f, mask_box(m), encode_rle(m), height, width)
               for f in range(0, frames, step) for i, m in masks[f].items() if m.any()]
    captions = {1: "a red box moving left", 2: "a blue disc", 3: None}
    plain = render_clip(src, os.path.join(folder, "plain.mp4"), records, draw=False)
    drawn = render_clip(src, os.path.join(folder, "overlay.mp4"), records, captions)
    print(f"render {width}x{height}, {frames} frames, 3 objects, masks every {step} frames:")
    print(f"  plain decode + encode: {plain.frames / plain.seconds:7.1f} frames/s")
    print(f"  overlay (draw + encode): {drawn.frames / drawn.seconds:5.1f} frames/s"
          f"  -> drawing costs x{drawn.seconds / plain.seconds:.2f} the plain re-encode")


def write_store(root: str, n_videos: int, n_objects: int, n_frames: int) -> None:
    from storage import Store, table_from_records

    store = Store.open(root)
    h, w = 360, 640
    rng = np.random.default_rng(0)
    base = (rng.integers(0, 255, (h, w, 3)) // 4 + 90).astype(np.uint8)
    thumbs = []
    for k in range(8):  # a few distinct thumbnails of realistic size, reused
        mask = np.zeros((h, w), bool)
        mask[60 + 20 * k: 160 + 20 * k, 100 + 40 * k: 200 + 40 * k] = True
        frame = base.copy()
        frame[mask] = object_color(k)
        thumbs.append(make_thumbnail(frame, mask, object_color(k)))
    mask = np.zeros((h, w), bool)
    mask[100:160, 200:260] = True
    rle = encode_rle(mask)
    for v in range(n_videos):
        vid = f"{v:064x}"
        key = "trk-bench"
        store.write_unit("videos", vid, "probe", table_from_records("videos", [dict(
            video_id=vid, uri=f"/gone/cam{v % 50}/clip{v}.mp4", size_bytes=10_000_000, fps=30.0, num_frames=900,
            duration_s=30.0, width=w, height=h, probed_at=T0)]))
        objects, frames, descs, rows = [], [], [], []
        for o in range(1, n_objects + 1):
            start = (o * 37) % 600
            idx = [start + 30 * i for i in range(n_frames)]
            objects.append(dict(video_id=vid, track_key=key, object_id=o, first_frame=idx[0], last_frame=idx[-1],
                                t_start=idx[0] / 30, t_end=idx[-1] / 30, frames_present=n_frames, max_area=3600,
                                mean_area_frac=0.016, mean_score=0.9, discovered_by="auto", color="red",
                                mean_speed_px_s=12.0, direction_deg=float(o * 17 % 360), tracked_at=T0))
            for i, f in enumerate(idx):
                frames.append(dict(video_id=vid, track_key=key, object_id=o, frame_idx=f, t=f / 30, x0=200 + i,
                                   y0=100, x1=260 + i, y1=160, area=3600, score=0.9, mask_rle=rle, mask_h=h, mask_w=w))
            descs.append(dict(video_id=vid, track_key=key, object_ids=[o], describe_key="dk", prompt_id="caption",
                              prompt="Describe the object.", task="caption", answer=f"object {o} of video {v}, a "
                              f"{['red car', 'person walking', 'white van', 'dog'][o % 4]} near the gate",
                              model_id="bench@0", frames_used=idx[:2], n_tokens=12, latency_ms=5.0, run_id="r",
                              created_at=T0))
            t = thumbs[o % len(thumbs)]
            # distinct bytes per row (after the JPEG's end marker, which decoders ignore), so no copy of the
            # table can deduplicate the reused images and make them look smaller than real ones
            tag = f"{v}:{o}".encode()
            rows.append(dict(video_id=vid, track_key=key, object_id=o, frame_idx=idx[0], t=idx[0] / 30,
                             crop_x0=t.crop_box[0], crop_y0=t.crop_box[1], crop_x1=t.crop_box[2],
                             crop_y1=t.crop_box[3], crop_jpeg=t.crop_jpeg + tag, crop_w=t.crop_w, crop_h=t.crop_h,
                             frame_jpeg=t.frame_jpeg + tag, frame_w=t.frame_w, frame_h=t.frame_h))
        store.write_unit("object_frames", vid, key, table_from_records("object_frames", frames))
        store.write_unit("objects", vid, key, table_from_records("objects", objects))
        store.write_unit("descriptions", vid, "dk", table_from_records("descriptions", descs))
        store.write_unit("object_thumbnails", vid, key, table_from_records("object_thumbnails", rows))
    store.close()


def bench_report(folder: str, n_videos: int, n_objects: int, n_frames: int, materialize: bool) -> None:
    from storage import Store
    from storage.layout import MATERIALIZED_TABLES

    if materialize:
        MATERIALIZED_TABLES.append("object_thumbnails")
    root = os.path.join(folder, "store")
    started = time.perf_counter()
    write_store(root, n_videos, n_objects, n_frames)
    written = time.perf_counter() - started
    store = Store.open(root)
    report = store.refresh_views()
    views_mb = os.path.getsize(store.db_path) / 1e6
    again = time.perf_counter()
    store.refresh_views()  # nothing changed
    noop = time.perf_counter() - again
    store.close()
    thumbs_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(root, "object_thumbnails"))
                    for f in fs) / 1e6
    print(f"store {n_videos} videos x {n_objects} objects ({n_frames} timeline rows each): written in {written:.1f} s;"
          f" object_thumbnails {thumbs_mb:.1f} MB of Parquet")
    print(f"  views ({'thumbnails materialised' if materialize else 'thumbnails read from Parquet'}): full refresh "
          f"{report.seconds:.1f} s, views.duckdb {views_mb:.1f} MB, no-op refresh {noop:.2f} s")
    from flows.report.build import build_report
    from flows.report.data import open_store_for_reading

    store = open_store_for_reading(root)
    result = build_report(store, os.path.join(folder, "report"))
    store.close()
    index_kb = os.path.getsize(result.index) / 1e3
    page = os.path.join(folder, "report", "videos", f"{0:064x}.html")
    print(f"report: {result.videos} videos, {result.objects} objects, {result.pages} pages, {result.files} files, "
          f"{result.bytes / 1e6:.1f} MB, built in {result.seconds:.1f} s; index page {index_kb:.0f} KB, "
          f"video page {os.path.getsize(page) / 1e3:.0f} KB, search data "
          f"{os.path.getsize(os.path.join(folder, 'report', 'data', 'objects.js')) / 1e6:.1f} MB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--step", type=int, default=5, help="frames between stored masks (tracking's sampling)")
    p.add_argument("--videos", type=int, default=1000)
    p.add_argument("--objects", type=int, default=20)
    p.add_argument("--timeline", type=int, default=10, help="timeline records per object in the synthetic store")
    p.add_argument("--materialize-thumbnails", action="store_true")
    p.add_argument("--skip-render", action="store_true")
    p.add_argument("--skip-report", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-render-") as folder:
        if not args.skip_render:
            bench_render(folder, args.width, args.height, args.frames, args.step)
        if not args.skip_report:
            bench_report(folder, args.videos, args.objects, args.timeline, args.materialize_thumbnails)


if __name__ == "__main__":
    main()
