"""`pixelrefer report --store DIR --out DIR [--where PREDICATE] [--overlays DIR]`: a static site of the store.

Opens from file:// and works offline: an index of the videos (thumbnail, duration, size, objects, state,
run history), a page per video (timeline with one bar per object, thumbnails, the overlay clip when
`pixelrefer render` made one, trajectories and object counts), every object's detail (crop, time span,
colour, speed, direction, every description with its prompt and model) and a filter box. The store is
only read; OUT is replaced whole at every build (a previous report, or an empty or new folder).

--where keeps only the objects matching one read-only predicate over objects/videos (as in `describe`).
Exit codes: 0 written, 2 bad arguments (no store, OUT a file or a folder of other files, bad --where),
1 the build failed.
"""

from __future__ import annotations

import argparse

from flows.commands._common import add_store_options, fail


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write a static HTML report of the store (opens from file://)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_options(p)
    p.add_argument("--out", required=True, help="report folder (replaced whole at every build)")
    p.add_argument("--where", help="SQL predicate over objects/videos: only the matching objects")
    p.add_argument("--overlays", help="folder of `pixelrefer render`'s clips (default: <store>-overlays)")
    p.add_argument("--page-size", type=int, default=50, help="videos per index page (default 50)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flows.report.build import build_report
    from flows.report.data import open_store_for_reading
    from flows.report.publish import ReportTargetError
    from storage import StoreError

    if args.page_size < 1:
        return fail("report", "--page-size must be at least 1")
    try:
        store = open_store_for_reading(args.store, args.catalog_url)
    except StoreError as exc:
        return fail("report", exc)
    try:
        result = build_report(store, args.out, where=args.where, overlays=args.overlays, page_size=args.page_size,
                              progress=print)
    except (ReportTargetError, StoreError) as exc:  # PredicateError is a StoreError
        return fail("report", exc)
    except OSError as exc:
        return fail("report", f"writing {args.out} failed: {exc}", code=1)
    finally:
        store.close()
    print(f"report: {result.videos} video(s), {result.objects} object(s), {result.pages} page(s), "
          f"{result.bytes / 1e6:.1f} MB in {result.seconds:.1f} s")
    print(f"open file://{result.index}")
    return 0
