"""`pixelrefer index --store DIR [--embedder ID]`: embed the descriptions that have no vectors yet for that
embedder, so `pixelrefer search` finds them.

The embedder: --embedder (wordllama, sentence-transformers:HUB_ID or a model folder), else the one the
store's vectors were made with, else wordllama. Another embedder adds its vectors beside the old ones
(the store's search switches to it once it covers as many descriptions). Idempotent: a second run writes
nothing; killed (or Ctrl-C), a re-run does only what is left. No Prefect server is needed.

Exit codes: 0 done (or nothing to index), 1 some units failed, 2 bad arguments / unusable store or
embedder, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import TYPE_CHECKING

from flows.commands._common import add_store_options, fail

if TYPE_CHECKING:
    from storage import Store

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("index", help="embed descriptions for search (those not indexed yet)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_options(p)
    p.add_argument("--embedder", help="wordllama (default, offline), sentence-transformers:HUB_ID or a model folder "
                   "(default: the embedder of the store's vectors, else wordllama)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N for sentence-transformers models (default cpu)")
    p.add_argument("--batch-size", type=int, default=2048, help="texts embedded per call (default 2048)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flows.settings import env_settings

    store_dir = args.store or env_settings().store
    if not store_dir:
        return fail("index", "give --store DIR (or set PIXELREFER_STORE)", EXIT_USAGE)
    if args.batch_size < 1:
        return fail("index", f"--batch-size must be 1 or more, not {args.batch_size}", EXIT_USAGE)
    from pixelrefer_core.embedding import EmbedderError
    from pixelrefer_core.errors import ModelLoadError
    from storage import Store, StoreError

    try:
        store = Store.open(store_dir, catalog_url=args.catalog_url or env_settings().catalog_url, create=False)
        store.require_writable("indexing descriptions")
    except StoreError as exc:
        return fail("index", exc, EXIT_USAGE)
    try:
        return _index(store, args)
    except (EmbedderError, ModelLoadError, StoreError) as exc:
        return fail("index", exc, EXIT_USAGE)
    except KeyboardInterrupt:
        print("pixelrefer index: interrupted; indexed units are kept, a re-run does the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        store.close()


def _index(store: Store, args: argparse.Namespace) -> int:
    from flows.run_context import Heartbeat
    from flows.settings import DEFAULT_CLAIM_LEASE_S, default_worker_id
    from flows.stages.index import describe_units_of, index_descriptions
    from flows.stages.outcomes import Status
    from flows.vectors import resolve_embedder_ref
    from pixelrefer_core.embedding import parse_ref

    def progress(line: str) -> None:
        print(line, flush=True)

    described = describe_units_of(store)
    if not described:
        progress(f"nothing to index: the store {store.root} has no descriptions yet (describe its objects first: "
                 f"pixelrefer run ARCHIVE --store {store.root}, or pixelrefer describe --store {store.root})")
        return 0
    ref = resolve_embedder_ref(store, args.embedder)
    parse_ref(ref)  # an unknown embedder is refused before the run is recorded
    worker_id = default_worker_id()
    run_id = store.catalog.start_run("index", {"store": store.root, "embedder": ref, "device": args.device},
                                     host=socket.gethostname(), pid=os.getpid())
    status, summary = "failed", {}
    try:
        with Heartbeat(store, run_id, worker_id, every_s=DEFAULT_CLAIM_LEASE_S / 4):
            report = index_descriptions(store, described, ref, worker_id=worker_id, device=args.device,
                                        max_texts=args.batch_size, progress=progress)
        if report.count(Status.DONE):
            store.refresh_views()
        summary = {"embedder_id": report.embedder_id, "done": report.count(Status.DONE),
                   "skipped": report.count(Status.SKIPPED), "failed": report.count(Status.FAILED),
                   "busy": report.count(Status.BUSY), "vectors": report.vectors_written}
        status = "ok"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        store.catalog.finish_run(run_id, status, summary)
    print(report.line() if report.count(Status.DONE) or report.count(Status.FAILED)
          else f"nothing to do: every description is indexed with {report.embedder_id}")
    for o in report.outcomes:
        if o.status == Status.FAILED:
            print(f"  failed: video {o.video_id[:12]} descriptions {o.describe_key}: {o.error}", file=sys.stderr)
    return EXIT_FAILED if report.count(Status.FAILED) else 0
