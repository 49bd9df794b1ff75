"""`pixelrefer search --store DIR "a person carrying a red bag"`: objects ranked by the meaning of their
descriptions.

    pixelrefer search --store DIR "a dog on a leash" [--limit 20] [--where PREDICATE] [--prompt ID]
    pixelrefer search --store DIR --like VIDEO_ID:OBJECT_ID        (objects described like that one)

Each object appears once, with its best-matching description: video, object id, time span (seconds),
the matching text, its prompt, the score (cosine similarity, -1..1) and, when the store has thumbnails,
the frame of the object's thumbnail. --where is a read-only predicate over objects/videos (as in
`describe`), applied before ranking, e.g. --where "color = 'red' AND videos.uri LIKE '%cam3%'".
The text is embedded by the embedder the store was indexed with (`pixelrefer index`); --embedder picks
another of the store's embedders. VIDEO_ID may be a unique prefix of the id.

Exit codes: 0 ok (also with no match), 1 nothing to search (no descriptions or no vectors: says what to
run), 2 bad arguments (empty text, only stop words, bad --where, unknown --like object, --limit < 1).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from flows.commands._common import add_store_options, missing_store, store_root, views_db_path

if TYPE_CHECKING:
    import duckdb

EXIT_NOTHING, EXIT_USAGE = 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("search", help="find objects by the meaning of their descriptions",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", nargs="?", help="what to look for, e.g. \"a person carrying a red bag\"")
    add_store_options(p)
    p.add_argument("--like", metavar="VIDEO_ID:OBJECT_ID", help="objects whose descriptions are closest to that object's")
    p.add_argument("--where", help="SQL predicate over objects/videos, applied before ranking")
    p.add_argument("--prompt", help="only descriptions answering this prompt id")
    p.add_argument("--limit", type=int, default=20, help="number of objects (default 20)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--embedder", help="one of the store's embedders (default: the one it was indexed with)")
    p.add_argument("--device", default="cpu", help="device of a sentence-transformers embedder (default cpu)")
    p.add_argument("--refresh", action="store_true", help="refresh the store's views first")
    p.set_defaults(func=run)


def _err(message: object, code: int) -> int:
    print(f"pixelrefer search: {message}", file=sys.stderr)
    return code


def _quiet(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET enable_progress_bar = false")  # a bar on stderr between the command and its table


def run(args: argparse.Namespace) -> int:
    if (args.text is None) == (args.like is None):
        return _err("give a search text or --like VIDEO_ID:OBJECT_ID (exactly one)", EXIT_USAGE)
    if args.limit < 1:
        return _err(f"--limit must be 1 or more, not {args.limit}", EXIT_USAGE)
    if not args.store:
        return _err("give --store DIR (or set PIXELREFER_STORE)", EXIT_USAGE)
    if (why := missing_store(args.store)) is not None:
        return _err(why, EXIT_NOTHING)
    root = store_root(args.store)
    from flows.search import SearchError, SearchRequest, search
    from flows.vectors import NothingToSearchError, lazy_embedder
    from pixelrefer_core.embedding import EmbedderError, QueryTextError
    from pixelrefer_core.errors import ModelLoadError
    from storage.errors import PredicateError, QueryError, StoreError
    from storage.formatting import format_result
    from storage.query import open_views

    request = SearchRequest(text=args.text, like=args.like, where=args.where, prompt_id=args.prompt,
                            limit=args.limit, embedder=args.embedder)
    try:
        db_path = views_db_path(root)
        if args.refresh:
            from storage.store import Store

            store = Store.open(root, catalog_url=args.catalog_url, create=False)
            try:
                store.refresh_views()
            finally:
                store.close()
        con = open_views(db_path, root, prepare=_quiet)
        try:
            result = search(con, request, root, lambda eid: lazy_embedder(eid, args.device))
        finally:
            con.close()
    except (SearchError, QueryTextError, PredicateError, EmbedderError) as exc:
        return _err(exc, EXIT_USAGE)
    except NothingToSearchError as exc:
        return _err(exc, EXIT_NOTHING)
    except ModelLoadError as exc:
        return _err(exc, EXIT_USAGE)
    except QueryError as exc:
        return _err(f"search query failed: {exc}", EXIT_USAGE)
    except StoreError as exc:
        return _err(exc, EXIT_NOTHING)
    for note in result.notes:
        print(f"pixelrefer search: note: {note}", file=sys.stderr)
    text = format_result(result.columns, result.rows(), args.format)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if args.format == "table":
        sys.stdout.write(f"\n(by meaning, with {result.embedder_id})\n")
    sys.stdout.flush()
    return 0
