"""`pixelrefer verify --store DIR [--repair]`: check a store's files against its catalog, and heal it.

Every unit the catalog records as done is checked against its files (the file exists, its Parquet footer
reads, its schema is one of the table's, its row count is the one recorded), and every file against the
catalog (a file no done unit vouches for). --repair sets bad files aside into <store>/quarantine/ (with
a reason file, listed by `pixelrefer status`), puts their units back to pending so the next run redoes
them, adopts complete unit files the catalog forgot, and refreshes the views.

Exit codes: 0 clean (or everything repaired), 1 problems remain, 2 usage (no store, read-only store with --repair).
"""

from __future__ import annotations

import argparse
import sys

from flows.commands._common import add_store_options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("verify", help="check a store's files against its catalog (--repair heals it)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_options(p)
    p.add_argument("--repair", action="store_true", help="set bad files aside and re-queue their units")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.store:
        print("pixelrefer verify: give --store DIR (or set PIXELREFER_STORE)", file=sys.stderr)
        return 2
    from storage.errors import StoreError
    from storage.store import Store

    try:
        store = Store.open(args.store, catalog_url=args.catalog_url, create=False, read_only=not args.repair)
    except StoreError as exc:
        print(f"pixelrefer verify: {exc}", file=sys.stderr)
        return 2
    try:
        report = store.verify(repair=args.repair)
    except StoreError as exc:
        print(f"pixelrefer verify: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(report.text())
    return 0 if report.ok else 1
