"""`pixelrefer export`: object timelines and descriptions out of a store.

    pixelrefer export --store DIR --format csv|parquet|coco-json|youtube-vis|mot --out PATH [--video ID]
                      [--all-tracks] [--with-frames]

csv / parquet: PATH is a folder with videos, objects, object_frames and descriptions files.
coco-json: PATH is one JSON file (COCO-style video annotations with RLE masks; see storage.export).
youtube-vis: PATH is one JSON file in the YouTube-VIS layout (per-frame RLE segmentations, boxes, areas).
mot: PATH is a folder with one MOTChallenge text file per video (frame,id,x,y,w,h,conf,-1,-1,-1).
--with-frames (coco-json, youtube-vis): also write the annotated frames as JPEG files under
JPEGImages/<sequence>/ beside the JSON, which the documents' file names point to (viewers and
labelling tools open them); decodes only those frames from the source videos.
Only the latest tracking of each video is exported unless --all-tracks. A store that cannot be written
(read-only files or media) is exported as its last refresh left it.
Exit codes: 0 ok, 1 missing store, unknown video, source video gone (--with-frames) or write failure,
2 --with-frames with a format that has no frames.
"""

from __future__ import annotations

import argparse
import os
import sys

from flows.commands._common import add_store_options, is_remote, missing_store
from storage.formatting import EXPORT_FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export timelines and descriptions (csv, parquet, coco-json)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_options(p)
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--out", required=True, help="output folder (csv, parquet, mot) or JSON file (coco-json, youtube-vis)")
    p.add_argument("--video", help="export only this video_id")
    p.add_argument("--all-tracks", action="store_true", help="every tracking, not only the latest per video")
    p.add_argument("--with-frames", action="store_true",
                   help="coco-json / youtube-vis: also write the annotated frames as JPEG beside the JSON")
    p.set_defaults(func=run)


def _writable(store_dir: str) -> bool:
    catalog = os.path.join(store_dir, "catalog.sqlite")
    return os.access(store_dir, os.W_OK) and (not os.path.exists(catalog) or os.access(catalog, os.W_OK))


def run(args: argparse.Namespace) -> int:
    if not args.store:
        print("pixelrefer export: give --store DIR (or set PIXELREFER_STORE)", file=sys.stderr)
        return 1
    if getattr(args, "with_frames", False) and args.format not in ("coco-json", "youtube-vis"):
        print(f"pixelrefer export: --with-frames needs --format coco-json or youtube-vis, not {args.format}",
              file=sys.stderr)
        return 2
    if (why := missing_store(args.store)) is not None:
        print(f"pixelrefer export: {why}", file=sys.stderr)
        return 1
    from pixelrefer_core.errors import VideoError
    from storage.errors import StoreError
    from storage.export import export_store
    from storage.store import Store

    try:
        read_only = not is_remote(args.store) and not _writable(args.store)
        store = Store.open(args.store, catalog_url=args.catalog_url, create=False, read_only=read_only)
        try:
            if getattr(args, "with_frames", False):
                from flows.exporting import export_with_frames

                out = export_with_frames(store, args.format, args.out, video_id=args.video,
                                         all_tracks=args.all_tracks,
                                         cache_dir=os.path.join(args.store, "cache", "remote"))
            else:
                out = export_store(store, args.format, args.out, video_id=args.video, all_tracks=args.all_tracks)
        finally:
            store.close()
    except (StoreError, OSError, VideoError) as exc:
        print(f"pixelrefer export: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0
