"""`pixelrefer release --store DIR [--unit STAGE:VIDEO_ID:KEY ...] [--stale] [--worker ID]`: free claims.

A unit is claimed ('running') by the worker doing it, which renews its claim while it works; a claim
nobody renewed for the lease (2 minutes by default) is taken over by the next run anyway. This command
frees claims by hand, e.g. after killing a worker, so that the next run need not wait: with no option it
lists the held claims; --unit frees those units, --worker frees that worker's claims, --stale frees the
claims whose holder stopped renewing them (combinable; --all frees every claim).

Exit codes: 0 ok, 2 usage (no store, bad --unit).
"""

from __future__ import annotations

import argparse
import sys

from flows.commands._common import add_store_options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("release", help="list or free claims held on units",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_options(p)
    p.add_argument("--unit", action="append", default=[], metavar="STAGE:VIDEO_ID:KEY",
                   help="free this unit's claim (repeatable)")
    p.add_argument("--worker", help="free the claims of this worker id")
    p.add_argument("--stale", action="store_true", help="free only claims whose holder stopped renewing them")
    p.add_argument("--lease", type=float, help="seconds without renewal that make a claim stale (default 120)")
    p.add_argument("--all", action="store_true", help="free every claim")
    p.set_defaults(func=run)


def _units(specs: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for spec in specs:
        parts = spec.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"--unit {spec!r}: give STAGE:VIDEO_ID:KEY, e.g. track:<sha256>:<track_key>")
        out.append((parts[0], parts[1], parts[2]))
    return out


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def run(args: argparse.Namespace) -> int:
    if not args.store:
        print("pixelrefer release: give --store DIR (or set PIXELREFER_STORE)", file=sys.stderr)
        return 2
    try:
        units = _units(args.unit)
    except ValueError as exc:
        print(f"pixelrefer release: {exc}", file=sys.stderr)
        return 2
    from storage.catalog import DEFAULT_LEASE_S
    from storage.errors import StoreError
    from storage.store import Store

    lease = args.lease if args.lease is not None else DEFAULT_LEASE_S
    listing = not (units or args.worker or args.stale or args.all)
    try:
        store = Store.open(args.store, catalog_url=args.catalog_url, create=False, read_only=listing)
    except StoreError as exc:
        print(f"pixelrefer release: {exc}", file=sys.stderr)
        return 2
    try:
        if listing:
            held = store.catalog.held_claims()
            print(f"{len(held)} claim(s) held" + (":" if held else ""))
            for u in held:
                state = "stale" if u.is_stale(lease) else "live"
                print(f"  {u.stage}:{u.video_id}:{u.unit_key}  by {u.worker_id}  claimed {_age(u.age_s)} ago, "
                      f"last renewed {_age(u.heartbeat_age_s)} ago ({state})")
            return 0
        n = store.catalog.release_claims(worker_id=args.worker, units=units or None, stale_only=args.stale,
                                         lease_s=lease)
    except StoreError as exc:
        print(f"pixelrefer release: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"released {n} claim(s): those units are pending again")
    return 0
