"""`pixelrefer thumbnails --store DIR [--video ID|GLOB]`: object thumbnails for a store tracked before they existed.

For every tracking whose thumbnails are not written yet: decode only each object's best frame, write the
`object_thumbnails` unit (crop with the mask outline, reduced frame, JPEG), then refresh the views.
Idempotent and resumable: done units are skipped, an interrupted run keeps what it finished. A video
whose source file is gone is skipped with the reason (and done once the file is back). Runs need no
Prefect server. Exit codes: 0 done, 2 bad arguments (no store, unknown --video), 1 some unit failed.
"""

from __future__ import annotations

import argparse
import sys

from flows.commands._common import add_store_options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("thumbnails", help="write the object thumbnails of an existing store",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_options(p)
    p.add_argument("--video", help="a video id (or 6+ character prefix) or a glob over file names (default: all)")
    p.add_argument("--latest-only", action="store_true", help="only the latest tracking of each video")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flows.commands._common import fail, missing_store

    if not args.store:
        return fail("thumbnails", "give --store DIR (or set PIXELREFER_STORE)")
    if (why := missing_store(args.store)) is not None:
        return fail("thumbnails", why)
    from flows.report.render import select_videos
    from flows.stages.thumbnails import run_store_thumbnails
    from storage import Store, StoreError

    try:
        store = Store.open(args.store, catalog_url=args.catalog_url, create=False)
    except StoreError as exc:
        return fail("thumbnails", exc)
    try:
        try:
            store.refresh_views()
            ids = None if args.video is None else [v.video_id for v in select_videos(store, args.video)]
        except StoreError as exc:
            return fail("thumbnails", exc)
        try:
            summary = run_store_thumbnails(store, video_ids=ids, latest_only=args.latest_only, echo=print)
        except KeyboardInterrupt:
            print("pixelrefer thumbnails: interrupted; finished units are kept, a re-run resumes", file=sys.stderr)
            return 130
    finally:
        store.close()
    print(summary.text())
    return 1 if summary.failed else 0
