"""`pixelrefer query`: read-only SQL over a store's DuckDB views, streamed to the output.

    pixelrefer query --store DIR "SELECT ..." [--format table|csv|json] [--limit N]
    pixelrefer query --store DIR --file object_timeline        (a .sql file, or the name of one in sql/)

In the SQL, embed('text') is the query vector of the store's embedder (the one its description vectors
were made with), a FLOAT[dim] like `description_vectors.vector`, for ranking by meaning:
    ORDER BY array_cosine_similarity(v.vector, embed('dog on a leash')) DESC      (sql/semantic_search.sql)

Only the store's own data can be read (storage.lockdown). Results are streamed in batches: csv and json
write every row (unless --limit), the table format shows the first --limit rows (default 1000) and says
when the result has more. --timeout stops a query that runs too long; Ctrl-C stops it at once.

Exit codes: 0 ok, 1 missing store / views, 2 bad SQL or usage, 3 refused write statement, 124 time limit,
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_STORE, EXIT_BAD_SQL, EXIT_REFUSED, EXIT_TIMEOUT, EXIT_INTERRUPTED = 1, 2, 3, 124, 130
SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
TABLE_LIMIT = 1000  # default --limit of the table format (csv / json: no limit)
DEFAULT_TIMEOUT_S = 300.0  # = storage.query.DEFAULT_TIMEOUT_S (not imported: keeps `--help` free of duckdb)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("query", help="run read-only SQL over a store's views",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sql", nargs="?", help="SQL text (or use --file)")
    p.add_argument("--store", default=os.environ.get("PIXELREFER_STORE") or None,
                   help="store root folder (default: $PIXELREFER_STORE)")
    p.add_argument("--file", help="a .sql file to run (a path, or the name of one in sql/)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--limit", type=int, default=None,
                   help=f"at most N rows (default: {TABLE_LIMIT} for table, all for csv/json; 0 = all)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"stop the query after S seconds (default {DEFAULT_TIMEOUT_S:g}; 0 = no limit)")
    p.add_argument("--max-memory", help="DuckDB memory limit, e.g. 2GB (default: half the machine's memory)")
    p.add_argument("--threads", type=int, help="DuckDB threads (default: the machine's cores, at most 8)")
    p.add_argument("--refresh", action="store_true", help="refresh the store's views before the query")
    p.add_argument("--catalog-url", default=os.environ.get("PIXELREFER_CATALOG_URL") or None,
                   help="the catalog's SQLAlchemy URL, for --refresh (default: $PIXELREFER_CATALOG_URL, else the "
                        "store's SQLite file)")
    p.set_defaults(func=run)


def _read_sql_file(name: str) -> str:
    for candidate in (Path(name), SQL_DIR / name, SQL_DIR / f"{name}.sql"):
        if candidate.is_file():
            return candidate.read_text()
    raise FileNotFoundError(name)


def _err(message: str, code: int) -> int:
    print(f"pixelrefer query: {message}", file=sys.stderr)
    return code


def _refresh(store_dir: str, catalog_url: str | None) -> str:
    """Refresh the views (needs write access); returns the views file path."""
    from storage.store import Store

    store = Store.open(store_dir, catalog_url=catalog_url, create=False)
    try:
        store.refresh_views()
        return store.db_path
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    if (args.sql is None) == (args.file is None):
        return _err("give exactly one of SQL text or --file", EXIT_BAD_SQL)
    if args.file is not None:
        try:
            sql = _read_sql_file(args.file)
        except (FileNotFoundError, OSError):
            return _err(f"no SQL file {args.file!r} (nor in {SQL_DIR})", EXIT_BAD_SQL)
    else:
        sql = args.sql
    if not args.store:
        return _err("give --store DIR (or set PIXELREFER_STORE)", EXIT_BAD_SQL)
    remote = "://" in args.store and not args.store.startswith("file://")  # an fsspec URL (storage.remote)
    if not remote and not os.path.isdir(args.store):
        return _err(f"no store at {args.store} (folder not found)", EXIT_STORE)
    if args.limit is not None and args.limit < 0:
        return _err("--limit must be 0 (all rows) or more", EXIT_BAD_SQL)
    from flows.vectors import embed_function
    from storage.errors import (
        QueryError,
        QueryInterrupted,
        QueryTimeoutError,
        ReadOnlyQueryError,
        StoreError,
    )
    from storage.formatting import write_result
    from storage.lockdown import QueryLimits
    from storage.query import stream_query
    from storage.remote import local_views_path

    root = args.store.rstrip("/") if remote else os.path.abspath(args.store)
    db_path = local_views_path(root) if remote else os.path.join(root, "views.duckdb")
    limit = args.limit if args.limit is not None else (TABLE_LIMIT if args.format == "table" else 0)
    limits = QueryLimits(memory_limit=args.max_memory, threads=args.threads)
    try:
        if args.refresh:
            db_path = _refresh(root, args.catalog_url)
        with stream_query(db_path, sql, root=root, timeout_s=args.timeout or None, limits=limits,
                          prepare=embed_function(root)) as result:
            n, cut = write_result(sys.stdout, result.columns, result.batches(), args.format, limit)
        if cut and args.format != "table":
            print(f"pixelrefer query: output cut at {n} rows by --limit {limit}", file=sys.stderr)
    except ReadOnlyQueryError as exc:
        return _err(str(exc), EXIT_REFUSED)
    except QueryTimeoutError as exc:
        return _err(str(exc), EXIT_TIMEOUT)
    except QueryInterrupted:
        return _err("interrupted", EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        return _err("interrupted", EXIT_INTERRUPTED)
    except QueryError as exc:
        return _err(f"SQL error: {exc}", EXIT_BAD_SQL)
    except StoreError as exc:
        return _err(str(exc), EXIT_STORE)
    except BrokenPipeError:  # e.g. `| head`: the reader went away, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    sys.stdout.flush()
    return 0
