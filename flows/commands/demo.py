"""`pixelrefer demo [--store DIR]`: the whole pipeline offline, in a couple of minutes on a laptop CPU.

Makes a small archive (generated videos of moving shapes, one corrupt file, and one short real clip
from ../shared/data/videos when present), processes it with the motion segmenter and the tiny
PixelRefer-Lite profile, then runs a few example SQL queries over the result, renders the overlay clips
(<store>-overlays) and writes the report (<store>-report/index.html), whose path it prints to open.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from flows.commands._common import fail, prepare_prefect, setup_console, usage_errors
from flows.commands._pipeline import run_pipeline

SHARED_VIDEOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos"
REAL_CLIPS = ("cutie_example.mp4", "bedroom.mp4")

QUERIES = (
    ("Red objects moving left, with their time spans",
     "SELECT v.uri, o.object_id, round(o.t_start, 2) AS t_start, round(o.t_end, 2) AS t_end, "
     "round(o.direction_deg) AS direction_deg FROM latest_objects o JOIN videos v USING (video_id) "
     "WHERE o.color = 'red' AND o.direction_deg BETWEEN 135 AND 225 ORDER BY v.uri, o.t_start"),
    ("Objects per video",
     "SELECT v.uri, v.fps, v.duration_s, count(o.object_id) AS objects FROM videos v "
     "LEFT JOIN latest_objects o USING (video_id) GROUP BY ALL ORDER BY v.uri"),
    ("Latest caption of each object",
     "SELECT v.uri, c.object_id, c.color, c.caption FROM object_captions c JOIN videos v USING (video_id) "
     "ORDER BY v.uri, c.object_id LIMIT 10"),
)

NOTICE = """\
Note: the demo uses a tiny, randomly initialised PixelRefer-Lite, so the captions above are untrained
noise; they only show that the pipeline runs end to end. With the released weights, on a GPU:

  pixelrefer run ARCHIVE --store DIR --model Alibaba-DAMO-Academy/PixelRefer-Lite-2B \\
      --sam2 facebook/sam2.1-hiera-large --device cuda

then search by meaning with `pixelrefer search --store DIR "a person carrying a red bag"` (every
description is already embedded) and ask your own questions with `pixelrefer query --store DIR "SELECT ..."`."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="offline end-to-end demo on a generated archive", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", default="./demo-store", help="store folder (default ./demo-store)")
    p.add_argument("--no-real-clip", action="store_true", help="only generated videos")
    p.set_defaults(func=run)


def build_demo_archive(folder: str, real_clip: bool = True) -> list[str]:
    """Generated scenes + corrupt file (+ a trimmed real clip when ../shared/data/videos has one)."""
    from flows.demo_archive import make_archive, trim_real_clip

    paths = make_archive(folder)
    if real_clip:
        for name in REAL_CLIPS:
            src = SHARED_VIDEOS / name
            if src.is_file():
                clip = trim_real_clip(str(src), os.path.join(folder, "real", name))
                if clip:
                    paths.append(clip)
                break
    return paths


def run(args: argparse.Namespace) -> int:
    prepare_prefect(args.verbose)
    setup_console(args.verbose)
    from flows.settings import RunSettings

    store_dir = os.path.abspath(args.store)
    archive = os.path.join(store_dir, "demo-archive")
    print(f"PixelRefer demo: store {store_dir}")
    try:
        paths = build_demo_archive(archive, real_clip=not args.no_real_clip)
        print(f"archive {archive}: {len(paths)} file(s) (generated scenes, one corrupt file"
              + (", one real clip)" if any("/real/" in p for p in paths) else ")"))
        settings = RunSettings.create(store=store_dir, archive=archive, profile="tiny", segmenter="motion",
                                      sample_fps=6.0, frames_per_object=3, max_new_tokens=12, batch_size=8)
    except usage_errors() as exc:
        return fail("demo", exc)
    code = run_pipeline("demo", settings, "archive")
    if code:
        return code
    from storage import Store
    from storage.query import format_table, run_query

    store = Store.open(store_dir, create=False)
    for title, sql in QUERIES:
        print(f"\n-- {title}\n{sql};")
        columns, rows = run_query(store.db_path, sql)
        print(format_table(columns, rows))
    store.close()
    index = write_demo_report(store_dir)
    print()
    print(NOTICE)
    print(f"\nOpen the demo's report (thumbnails, overlay clips, timelines, every description):\n  file://{index}")
    return 0


def write_demo_report(store_dir: str) -> str:
    """Overlay clips of the demo's videos (<store>-overlays) and its report (<store>-report); returns the
    report's index.html."""
    from flows.report.build import build_report
    from flows.report.data import open_store_for_reading
    from flows.report.overlays import default_overlays_dir
    from flows.report.render import render_video, select_videos

    store = open_store_for_reading(store_dir)
    try:
        overlays = default_overlays_dir(store_dir)
        for video in select_videos(store, None):
            outcome = render_video(store, video, overlays, max_side=640)
            print(f"overlay {os.path.basename(video.uri)}: {outcome.status}"
                  + (f" ({outcome.reason})" if outcome.reason else ""))
        result = build_report(store, store_dir.rstrip("/") + "-report", overlays=overlays)
    finally:
        store.close()
    return result.index
