"""`pixelrefer status --store DIR`: recent runs, units per stage and state, failures with reasons."""

from __future__ import annotations

import argparse
import os

from flows.commands._common import add_store_options, fail


def register(subparsers) -> None:
    p = subparsers.add_parser("status", help="runs, per-stage counts and failures of a store", description=__doc__)
    add_store_options(p)
    p.add_argument("--runs", type=int, default=10, help="how many recent runs to list (default 10)")
    p.set_defaults(func=run)


def status_text(store, n_runs: int = 10) -> str:
    """The status report of an open store, as printed by `pixelrefer status`."""
    catalog = store.catalog
    lines = [f"store {store.root}", "", "recent runs:"]
    runs = catalog.runs(limit=n_runs)
    if not runs:
        lines.append("  (none)")
    for r in runs:
        s = r.summary or {}
        took = f"{s.get('seconds', 0):.1f} s" if s else "-"
        lines.append(
            f"  {r.started_at:%Y-%m-%d %H:%M:%S}  {r.kind:<8} {r.status:<8} {took:>8}  "
            f"videos done {s.get('videos_done', '-')}, skipped {s.get('videos_skipped', '-')}, "
            f"failed {s.get('videos_failed', '-')}; descriptions +{s.get('descriptions_written', '-')}  [{r.id}]"
        )
    lines += ["", "units by stage:"]
    counts = catalog.stage_counts()
    if not counts:
        lines.append("  (none)")
    for stage in ("ingest", "track", "describe", *sorted(set(counts) - {"ingest", "track", "describe"})):
        if stage in counts:
            states = ", ".join(f"{state} {n}" for state, n in sorted(counts[stage].items()))
            lines.append(f"  {stage:<9} {states}")
    failures = catalog.failures()
    lines += ["", f"failures ({len(failures)}):"]
    for u in failures:
        lines.append(f"  {u.stage:<9} {u.uri or u.video_id[:16]}: {u.error} "
                     f"({'will be retried' if u.retryable else 'not retried'})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from storage import Store, StoreError

    if not args.store:
        return fail("status", "give --store DIR (or set PIXELREFER_STORE)")
    if not os.path.isdir(args.store) and "://" not in args.store:
        return fail("status", f"no store at {args.store} (folder not found)", code=1)
    try:
        store = Store.open(args.store, catalog_url=args.catalog_url, create=False)
    except StoreError as exc:
        return fail("status", exc, code=1)
    print(status_text(store, args.runs))
    return 0
