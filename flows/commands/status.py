"""`pixelrefer status --store DIR`: recent runs (crashed ones named), units per stage and state, claims held
now (owner and age), failures with reasons, files set aside. Works on a read-only store."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from flows.commands._common import add_store_options, fail

if TYPE_CHECKING:
    from storage import Store

STAGE_ORDER = ("ingest", "track", "describe")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="runs, per-stage counts, claims and failures of a store",
                              description=__doc__)
    add_store_options(p)
    p.add_argument("--runs", type=int, default=10, help="how many recent runs to list (default 10)")
    p.set_defaults(func=run)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _runs(store: Store, n_runs: int) -> list[str]:
    lines = ["recent runs:"]
    runs = store.catalog.runs(limit=n_runs)
    if not runs:
        lines.append("  (none)")
    for r in runs:
        s = r.summary or {}
        took = f"{s.get('seconds', 0):.1f} s" if s else "-"
        status = r.effective_status
        if status == "crashed":
            status = f"crashed ({'process gone' if r.host and r.pid else 'no heartbeat'}, started {_age(r.age_s)} ago)"
        elif status == "running":
            status = f"running ({_age(r.age_s)}, pid {r.pid} on {r.host})"
        lines.append(
            f"  {r.started_at:%Y-%m-%d %H:%M:%S}  {r.kind:<8} {status:<8} {took:>8}  "
            f"videos done {s.get('videos_done', '-')}, skipped {s.get('videos_skipped', '-')}, "
            f"failed {s.get('videos_failed', '-')}; descriptions +{s.get('descriptions_written', '-')}  [{r.id}]"
        )
    return lines


def _partial_videos(store: Store) -> list[tuple[str, int, str]]:
    """(uri, decodable frames, reason) of the videos recorded as partial (from the views file)."""
    from storage import StoreError
    from storage.query import run_query

    try:
        _, rows = run_query(store.db_path, "SELECT uri, decoded_frames, partial_reason FROM videos "
                                           "WHERE partial_reason IS NOT NULL ORDER BY uri", root=store.root)
    except StoreError:  # no views yet (a store that never finished a run)
        return []
    return [(str(u), int(n or 0), str(r)) for u, n, r in rows]


def status_text(store: Store, n_runs: int = 10) -> str:
    """The status report of an open store, as printed by `pixelrefer status`."""
    catalog = store.catalog
    lines = [f"store {store.root}" + (" (read-only)" if store.read_only else ""), ""]
    lines += _runs(store, n_runs)
    lines += ["", "units by stage:"]
    counts = catalog.stage_counts()
    if not counts:
        lines.append("  (none)")
    for stage in (*STAGE_ORDER, *sorted(set(counts) - set(STAGE_ORDER))):
        if stage in counts:
            states = ", ".join(f"{state} {n}" for state, n in sorted(counts[stage].items()))
            lines.append(f"  {stage:<9} {states}")
    held = catalog.held_claims()
    if held:
        lines += ["", f"claims held now ({len(held)}):"]
        for u in held:
            stale = " - stale: another worker may take it over" if u.is_stale() else ""
            lines.append(f"  {u.stage:<9} {u.uri or u.video_id[:16]} [{u.unit_key}] by {u.worker_id}, claimed "
                         f"{_age(u.age_s)} ago, last heartbeat {_age(u.heartbeat_age_s)} ago{stale}")
    failures = catalog.failures()
    lines += ["", f"failures ({len(failures)}):"]
    for u in failures:
        lines.append(f"  {u.stage:<9} {u.uri or u.video_id[:16]}: {u.error} "
                     f"({'will be retried' if u.retryable else 'not retried'})")
    partial = _partial_videos(store)
    if partial:
        lines += ["", f"partial videos ({len(partial)}: only their first frames decode; those were used):"]
        lines += [f"  {uri}: {n} frame(s) decode; {reason}" for uri, n, reason in partial]
    quarantined = catalog.quarantined(limit=20)
    if quarantined:
        lines += ["", "files set aside (quarantine/, their units were redone):"]
        lines += [f"  {q.path}: {q.reason}" for q in quarantined]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from storage import ReadOnlyStoreError, Store, StoreError

    store_dir = args.store or os.environ.get("PIXELREFER_STORE")
    if not store_dir:
        return fail("status", "give --store DIR (or set PIXELREFER_STORE)")
    if not os.path.isdir(store_dir) and "://" not in store_dir:
        return fail("status", f"no store at {store_dir} (folder not found)", code=1)
    try:
        try:
            store = Store.open(store_dir, catalog_url=args.catalog_url, create=False)
        except ReadOnlyStoreError:
            store = Store.open(store_dir, catalog_url=args.catalog_url, create=False, read_only=True)
    except StoreError as exc:
        return fail("status", exc, code=1)
    print(status_text(store, args.runs))
    return 0
