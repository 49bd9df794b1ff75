"""Opening a catalog database: engines (read-write or read-only), schema creation and migration.

Creation is safe when several processes open a new store at once: the fast path only reads the schema
version; creating or migrating happens under an exclusive lock (a file lock next to a SQLite file, a
PostgreSQL advisory lock otherwise), re-checks the version inside the lock, and retries once more on an
"already exists" error from a writer that does not take the lock (an older version of this code).

Read-only SQLite opens use a ``file:...?mode=ro`` URI; when SQLite cannot even read that way (a WAL
database whose folder cannot be written has no ``-shm`` file to map), the file is opened
``immutable=1``: it then shows the last checkpointed state, which is all a read-only folder can hold.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, insert, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from storage.catalog.tables import CATALOG_SCHEMA_VERSION, metadata, runs_t, schema_version_t, units_t
from storage.errors import ReadOnlyStoreError, SchemaVersionError, StoreError

__all__ = ["init_schema", "make_engine", "sqlite_file"]

log = logging.getLogger(__name__)

_PG_LOCK_KEY = 0x70697872  # "pixr": one advisory lock id for schema changes of every pixelrefer catalog


def sqlite_file(url: str) -> str | None:
    """The database file of a file-based SQLite URL (None: not SQLite, or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def _writable_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _read_only_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def _sqlite_engine(url: str, listener: Callable[[Any, Any], None], echo: bool) -> Engine:
    engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
    event.listen(engine, "connect", listener)
    return engine


def make_engine(url: str, read_only: bool = False, echo: bool = False) -> Engine:
    """An engine on `url`; `read_only` opens it so that nothing can be written (see module docstring)."""
    try:
        path = sqlite_file(url)
        if path is None:
            if make_url(url).get_backend_name() == "sqlite":
                return _sqlite_engine(url, _read_only_pragmas if read_only else _writable_pragmas, echo)
            engine = create_engine(url, echo=echo)
            if read_only and engine.dialect.name == "postgresql":
                engine = engine.execution_options(postgresql_readonly=True)
            return engine
        if not read_only:
            return _sqlite_engine(url, _writable_pragmas, echo)
        if not os.path.isfile(path):
            raise StoreError(f"no catalog at {path}: the store was never written (a read-only open creates nothing)")
        for params in ("mode=ro", "mode=ro&immutable=1"):
            engine = _sqlite_engine(f"sqlite:///file:{quote(path)}?{params}&uri=true", _read_only_pragmas, echo)
            try:
                with engine.connect() as con:
                    con.execute(text("SELECT count(*) FROM sqlite_master"))
            except SQLAlchemyError as exc:
                engine.dispose()
                last = exc
                continue
            if "immutable" in params:
                log.info("catalog %s opened immutable: its folder cannot be written (no -shm file for WAL)", path)
            return engine
        raise StoreError(f"cannot open catalog {path} read-only: {last}")
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open catalog {url!r}: {exc}") from exc


def _stored_version(con: Connection) -> int | None:
    """The catalog's schema version, or None when it has no schema yet."""
    if not inspect(con).has_table("schema_version"):
        return None
    versions = [r[0] for r in con.execute(select(schema_version_t.c.version))]
    return max(versions) if versions else None


@contextmanager
def _schema_lock(engine: Engine, url: str) -> Iterator[Connection]:
    """A connection holding the catalog's schema lock (see module docstring)."""
    path = sqlite_file(url)
    if path is not None:
        from filelock import FileLock

        with FileLock(path + ".init.lock", timeout=120), engine.connect() as con:
            yield con
        return
    with engine.connect() as con:
        if engine.dialect.name == "postgresql":
            con.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            con.commit()
            try:
                yield con
            finally:
                con.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                con.commit()
        else:
            yield con


def _add_columns(con: Connection, table_name: str, names: list[str]) -> None:
    table = metadata.tables[table_name]
    present = {c["name"] for c in inspect(con).get_columns(table_name)}
    prep = con.dialect.identifier_preparer
    for name in names:
        if name in present:
            continue
        col = table.c[name]
        con.execute(text(f"ALTER TABLE {prep.quote(table_name)} ADD COLUMN {prep.quote(name)} "
                         f"{col.type.compile(dialect=con.dialect)}"))


def _migrate_1_to_2(con: Connection) -> None:
    _add_columns(con, units_t.name, ["rows", "table_rows", "heartbeat_at"])
    _add_columns(con, runs_t.name, ["host", "pid", "heartbeat_at"])
    metadata.create_all(con, checkfirst=True)  # requests, video_paths, quarantine


# from_version -> step that brings a catalog of that version to from_version + 1 (inside the lock)
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _migrate_1_to_2}


def _create_or_migrate(con: Connection, where: str) -> None:
    stored = _stored_version(con)
    if stored == CATALOG_SCHEMA_VERSION:
        return
    if stored is not None and stored > CATALOG_SCHEMA_VERSION:
        raise SchemaVersionError(stored, CATALOG_SCHEMA_VERSION, where)
    if stored is None:
        metadata.create_all(con, checkfirst=True)
        con.execute(insert(schema_version_t).values(version=CATALOG_SCHEMA_VERSION))
        con.commit()
        log.debug("created catalog schema version %d in %s", CATALOG_SCHEMA_VERSION, where)
        return
    for version in range(stored, CATALOG_SCHEMA_VERSION):
        if version not in MIGRATIONS:
            raise SchemaVersionError(stored, CATALOG_SCHEMA_VERSION, where)
        MIGRATIONS[version](con)
        con.execute(update(schema_version_t).values(version=version + 1))
        con.commit()
        log.info("migrated catalog %s from schema version %d to %d", where, version, version + 1)


def _read_version(engine: Engine, where: str) -> int | None:
    for attempt in range(5):
        try:
            with engine.connect() as con:
                return _stored_version(con)
        except SQLAlchemyError as exc:
            if "locked" not in str(exc) or attempt == 4:
                raise StoreError(f"cannot read catalog {where}: {exc}") from exc
            time.sleep(0.05 * (attempt + 1))
    return None  # pragma: no cover - the loop returns or raises


def init_schema(engine: Engine, url: str, read_only: bool) -> None:
    """Make sure the catalog has the current schema (create it, or migrate an older one in place).

    Raises SchemaVersionError for a newer catalog; a read-only open of a missing or older schema raises
    ReadOnlyStoreError (creating or upgrading needs write access).
    """
    where = engine.url.render_as_string()
    path = sqlite_file(url)
    new_file = path is not None and (not os.path.isfile(path) or os.path.getsize(path) == 0)
    # A brand-new SQLite file is only ever touched under the lock: before WAL mode is set, SQLite's
    # rollback-journal locking answers "database is locked" at once to a second connection.
    stored = None if new_file and not read_only else _read_version(engine, where)
    if stored == CATALOG_SCHEMA_VERSION:
        return
    if stored is not None and stored > CATALOG_SCHEMA_VERSION:
        raise SchemaVersionError(stored, CATALOG_SCHEMA_VERSION, where)
    if read_only:
        what = "creating the catalog" if stored is None else (
            f"upgrading the catalog from schema version {stored} to {CATALOG_SCHEMA_VERSION}")
        raise ReadOnlyStoreError(where, what)
    for attempt in range(3):
        try:
            with _schema_lock(engine, url) as con:
                _create_or_migrate(con, where)
            return
        except SQLAlchemyError as exc:  # "already exists" from a writer that did not take the lock
            if "already exists" not in str(exc) or attempt == 2:
                raise StoreError(f"cannot initialise catalog {where}: {exc}") from exc
            log.debug("catalog schema creation raced (%s); retrying", exc)
