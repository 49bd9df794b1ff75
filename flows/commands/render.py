"""`pixelrefer render --store DIR [--video ID|GLOB] [--objects 1,4] [--out DIR] [--max-side PX]`: overlay clips.

One H.264 MP4 per video (plays in a browser's <video>), drawn from the source video and the stored masks
of its latest tracking: each object's mask tinted in its report colour, its box, id and short caption;
masks are held between the sampled frames tracking saw. Written to OUT/<video_id>.mp4 (default
<store>-overlays, where `pixelrefer report` looks) with a .json sidecar; a clip already made from the same
tracking and options is kept (--force redoes it). A video whose source file is gone is skipped with the
reason. The store is only read.

Exit codes: 0 done (skipped videos are listed), 2 bad arguments (no store, unknown --video, OUT a file),
1 a video failed to render.
"""

from __future__ import annotations

import argparse
import os
import sys

from flows.commands._common import add_store_options, fail


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("render", help="overlay clips (H.264 MP4) of the tracked objects", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_options(p)
    p.add_argument("--video", help="a video id (or 6+ character prefix) or a glob over file names (default: all)")
    p.add_argument("--objects", help="comma-separated object ids to draw (default: every object)")
    p.add_argument("--out", help="folder of the clips (default: <store>-overlays)")
    p.add_argument("--max-side", type=int, help="longest side of the clip in pixels (default: the source's)")
    p.add_argument("--force", action="store_true", help="render again even when the clip is up to date")
    p.set_defaults(func=run)


def _object_ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--objects {text!r}: give object ids separated by commas, e.g. 1,4") from None
    if not ids:
        raise ValueError(f"--objects {text!r}: no object id given")
    return ids


class _Bar:
    """A progress bar on stderr (tqdm; quiet when stderr is not a terminal, the summary lines say enough)."""

    def __init__(self, label: str):
        self.label, self.bar = label, None

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=self.label, unit="frame", file=sys.stderr, leave=False, disable=None,
                        dynamic_ncols=True)

    def add(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    from flows.report.data import open_store_for_reading
    from flows.report.overlays import default_overlays_dir
    from flows.report.render import render_video, select_videos
    from pixelrefer_core.errors import VideoError
    from storage import StoreError

    try:
        objects = _object_ids(args.objects)
    except ValueError as exc:
        return fail("render", exc)
    if args.max_side is not None and args.max_side < 16:
        return fail("render", f"--max-side {args.max_side}: give at least 16 pixels")
    try:
        store = open_store_for_reading(args.store, args.catalog_url)
    except StoreError as exc:
        return fail("render", exc)
    out = os.path.abspath(args.out or default_overlays_dir(store.root))
    if os.path.exists(out) and not os.path.isdir(out):
        return fail("render", f"output folder {out} is a file, not a folder")
    code = 0
    try:
        try:
            videos = select_videos(store, args.video)
        except StoreError as exc:
            return fail("render", exc)
        cache_dir = os.path.join(store.root, "cache", "remote")
        for i, video in enumerate(videos, 1):
            bar = _Bar(f"[{i}/{len(videos)}] {os.path.basename(video.uri)}")
            try:
                outcome = render_video(store, video, out, objects=objects, max_side=args.max_side, force=args.force,
                                       cache_dir=cache_dir, on_start=bar.start, on_frames=bar.add)
            except (VideoError, OSError) as exc:
                print(f"[{i}/{len(videos)}] {video.uri}: failed ({exc})")
                code = 1
                continue
            finally:
                bar.close()
            if outcome.status == "done":
                print(f"[{i}/{len(videos)}] {video.uri}: {outcome.frames} frames in {outcome.seconds:.1f} s -> "
                      f"{outcome.path}")
            elif outcome.status == "up to date":
                print(f"[{i}/{len(videos)}] {video.uri}: up to date ({outcome.path})")
            else:
                print(f"[{i}/{len(videos)}] {video.uri}: skipped: {outcome.reason}")
    finally:
        store.close()
    return code
