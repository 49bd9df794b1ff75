"""`pixelrefer query`: read-only SQL over a store's DuckDB views.

    pixelrefer query --store DIR "SELECT ..." [--format table|csv|json]
    pixelrefer query --store DIR --file sql/object_timeline.sql

Exit codes: 0 ok, 1 missing store / views, 2 bad SQL or usage, 3 refused write statement.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from storage.errors import QueryError, ReadOnlyQueryError, StoreError

EXIT_STORE, EXIT_BAD_SQL, EXIT_REFUSED = 1, 2, 3
SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def register(subparsers) -> None:
    p = subparsers.add_parser("query", help="run read-only SQL over a store's views",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sql", nargs="?", help="SQL text (or use --file)")
    p.add_argument("--store", required=True, help="store root folder")
    p.add_argument("--file", help="a .sql file to run (a path, or the name of one in sql/)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--refresh", action="store_true", help="refresh the store's views before the query")
    p.set_defaults(func=run)


def _read_sql_file(name: str) -> str:
    for candidate in (Path(name), SQL_DIR / name, SQL_DIR / f"{name}.sql"):
        if candidate.is_file():
            return candidate.read_text()
    raise FileNotFoundError(name)


def run(args: argparse.Namespace) -> int:
    if (args.sql is None) == (args.file is None):
        print("pixelrefer query: give exactly one of SQL text or --file", file=sys.stderr)
        return EXIT_BAD_SQL
    if args.file is not None:
        try:
            sql = _read_sql_file(args.file)
        except (FileNotFoundError, OSError):
            print(f"pixelrefer query: no SQL file {args.file!r} (nor in {SQL_DIR})", file=sys.stderr)
            return EXIT_BAD_SQL
    else:
        sql = args.sql
    if not os.path.isdir(args.store):
        print(f"pixelrefer query: no store at {args.store} (folder not found)", file=sys.stderr)
        return EXIT_STORE
    try:
        from storage.query import format_result, run_query
        from storage.store import Store

        if args.refresh:
            store = Store.open(args.store, create=False)
            store.refresh_views()
            db_path = store.db_path
            store.close()
        else:
            db_path = os.path.join(args.store, "views.duckdb")
        columns, rows = run_query(db_path, sql)
    except ReadOnlyQueryError as exc:
        print(f"pixelrefer query: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except QueryError as exc:
        print(f"pixelrefer query: SQL error: {exc}", file=sys.stderr)
        return EXIT_BAD_SQL
    except StoreError as exc:
        print(f"pixelrefer query: {exc}", file=sys.stderr)
        return EXIT_STORE
    text = format_result(columns, rows, args.format)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
