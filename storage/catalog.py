"""The catalog: runs, prompts and the state of every unit of work (SQLAlchemy 2.0 Core).

SQLite file by default (``<store root>/catalog.sqlite``, WAL mode, busy timeout), any SQLAlchemy
URL otherwise (``postgresql+psycopg://...`` when several machines share one store).

A *unit* is (stage, video_id, unit_key), e.g. ("track", <sha256>, <track_key>). Its state moves
pending -> running -> done | failed. ``claim_unit`` is the only way to move a unit to running and it
is atomic across processes and machines: one conditional INSERT, then one conditional UPDATE, and the
database's rowcount decides who won. All times are naive UTC datetimes (the same on every backend).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from storage.errors import SchemaVersionError, StoreError

__all__ = ["Catalog", "CATALOG_SCHEMA_VERSION", "UnitRecord", "RunRecord", "UNIT_STATES"]

log = logging.getLogger(__name__)

# Bump when the catalog tables change; add the migration from the previous version in `_migrate`.
CATALOG_SCHEMA_VERSION = 1
UNIT_STATES = ("pending", "running", "done", "failed")

_meta = MetaData()
schema_version_t = Table("schema_version", _meta, Column("version", Integer, nullable=False))
runs_t = Table(
    "runs",
    _meta,
    Column("id", String(64), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(32), nullable=False),
    Column("summary", JSON),
)
prompts_t = Table(
    "prompts",
    _meta,
    Column("prompt_id", String(128), primary_key=True),
    Column("text", Text, nullable=False),
    Column("task", String(64), nullable=False),
    Column("first_seen", DateTime, nullable=False),
)
units_t = Table(
    "units",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stage", String(64), nullable=False),
    Column("video_id", String(128), nullable=False),
    Column("unit_key", String(256), nullable=False),
    Column("uri", Text),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("retryable", Boolean, nullable=False, default=False),
    Column("worker_id", String(256)),
    Column("claimed_at", DateTime),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("stage", "video_id", "unit_key", name="uq_units_stage_video_unit"),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class UnitRecord:
    """One row of `units`. Times are naive UTC."""

    stage: str
    video_id: str
    unit_key: str
    uri: str | None
    state: str
    attempts: int
    error: str | None
    retryable: bool
    worker_id: str | None
    claimed_at: dt.datetime | None
    updated_at: dt.datetime


@dataclass(frozen=True)
class RunRecord:
    """One row of `runs`. Times are naive UTC; `status` is free text ('running', 'ok', 'failed', ...)."""

    id: str
    kind: str
    params: dict
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    summary: dict | None


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class Catalog:
    """Runs, prompts and unit states in one SQL database (see module docstring)."""

    def __init__(self, url: str, echo: bool = False):
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot open catalog {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._init_schema()

    # -- schema -------------------------------------------------------------------------------
    def _init_schema(self) -> None:
        try:
            _meta.create_all(self.engine)
            with self.engine.begin() as con:
                versions = [r[0] for r in con.execute(select(schema_version_t.c.version))]
                if not versions:
                    con.execute(insert(schema_version_t).values(version=CATALOG_SCHEMA_VERSION))
                    return
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot initialise catalog {self.url!r}: {exc}") from exc
        stored = max(versions)
        if stored > CATALOG_SCHEMA_VERSION:
            raise SchemaVersionError(stored, CATALOG_SCHEMA_VERSION, self.engine.url.render_as_string())
        if stored < CATALOG_SCHEMA_VERSION:
            self._migrate(stored)

    def _migrate(self, from_version: int) -> None:  # pragma: no cover - no older versions yet
        raise SchemaVersionError(from_version, CATALOG_SCHEMA_VERSION, self.url)

    def schema_version(self) -> int:
        with self.engine.connect() as con:
            return int(con.execute(select(func.max(schema_version_t.c.version))).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()

    # -- runs and prompts ---------------------------------------------------------------------
    def start_run(self, kind: str, params: dict) -> str:
        """Record a new run (status 'running'); returns its id (uuid4 hex)."""
        run_id = uuid.uuid4().hex
        with self.engine.begin() as con:
            con.execute(
                insert(runs_t).values(
                    id=run_id, kind=kind, params=params, started_at=_now(), status="running"
                )
            )
        return run_id

    def finish_run(self, run_id: str, status: str, summary: dict) -> None:
        with self.engine.begin() as con:
            res = con.execute(
                update(runs_t)
                .where(runs_t.c.id == run_id)
                .values(status=status, summary=summary, finished_at=_now())
            )
        if res.rowcount != 1:
            raise StoreError(f"no run {run_id!r} in catalog {self.url}")

    def runs(self, limit: int = 50, kind: str | None = None) -> list[RunRecord]:
        """Most recent first."""
        q = select(runs_t).order_by(runs_t.c.started_at.desc()).limit(limit)
        if kind is not None:
            q = q.where(runs_t.c.kind == kind)
        with self.engine.connect() as con:
            return [RunRecord(**row._asdict()) for row in con.execute(q)]

    def upsert_prompt(self, prompt_id: str, text: str, task: str) -> None:
        """Record a prompt once (first_seen is kept on later calls)."""
        with self.engine.begin() as con:
            exists = con.execute(select(prompts_t.c.prompt_id).where(prompts_t.c.prompt_id == prompt_id)).first()
            if exists:
                return
            try:
                with con.begin_nested():
                    con.execute(
                        insert(prompts_t).values(prompt_id=prompt_id, text=text, task=task, first_seen=_now())
                    )
            except IntegrityError:  # another process inserted it in between
                pass

    def prompts(self) -> list[dict]:
        with self.engine.connect() as con:
            return [row._asdict() for row in con.execute(select(prompts_t).order_by(prompts_t.c.first_seen))]

    # -- units ----------------------------------------------------------------------------------
    def _key(self, stage: str, video_id: str, unit_key: str):
        return (units_t.c.stage == stage) & (units_t.c.video_id == video_id) & (units_t.c.unit_key == unit_key)

    def _insert_if_absent(self, con, values: dict) -> int:
        """INSERT the unit row unless (stage, video_id, unit_key) exists; returns rows inserted."""
        dialect = self.engine.dialect.name
        if dialect in ("sqlite", "postgresql"):
            mod = __import__(f"sqlalchemy.dialects.{dialect}", fromlist=["insert"])
            stmt = mod.insert(units_t).values(**values).on_conflict_do_nothing(
                index_elements=["stage", "video_id", "unit_key"]
            )
            return con.execute(stmt).rowcount
        try:  # other backends: the unique constraint decides
            with con.begin_nested():
                return con.execute(insert(units_t).values(**values)).rowcount
        except IntegrityError:
            return 0

    def claim_unit(
        self,
        stage: str,
        video_id: str,
        unit_key: str,
        worker_id: str,
        uri: str | None = None,
        lease_s: float = 3600,
        force: bool = False,
    ) -> bool:
        """Atomically claim a unit for `worker_id`; True when this caller now owns it.

        Claimable: absent, 'pending', 'running' with a claim older than `lease_s` (its worker is
        presumed dead), 'failed' when that failure was retryable (or `force`). Never 'done'.
        """
        now = _now()
        with self.engine.begin() as con:
            inserted = self._insert_if_absent(
                con,
                dict(
                    stage=stage, video_id=video_id, unit_key=unit_key, uri=uri, state="running",
                    attempts=1, retryable=False, worker_id=worker_id, claimed_at=now, updated_at=now,
                ),
            )
        if inserted == 1:
            return True
        cutoff = now - dt.timedelta(seconds=lease_s)
        claimable = or_(
            units_t.c.state == "pending",
            (units_t.c.state == "running") & (units_t.c.claimed_at < cutoff),
            (units_t.c.state == "failed") if force else (units_t.c.state == "failed") & units_t.c.retryable.is_(True),
        )
        values: dict[str, Any] = dict(
            state="running", worker_id=worker_id, claimed_at=now, updated_at=now,
            attempts=units_t.c.attempts + 1,
        )
        if uri is not None:
            values["uri"] = uri
        with self.engine.begin() as con:
            res = con.execute(update(units_t).where(self._key(stage, video_id, unit_key) & claimable).values(**values))
        return res.rowcount == 1

    def add_pending(self, stage: str, video_id: str, unit_key: str, uri: str | None = None) -> bool:
        """Record a unit as pending unless it is already known; True when it was added."""
        now = _now()
        with self.engine.begin() as con:
            return 1 == self._insert_if_absent(
                con,
                dict(stage=stage, video_id=video_id, unit_key=unit_key, uri=uri, state="pending",
                     attempts=0, retryable=False, updated_at=now),
            )

    def _set_final(self, stage: str, video_id: str, unit_key: str, values: dict) -> None:
        now = _now()
        values = {**values, "updated_at": now}
        with self.engine.begin() as con:
            res = con.execute(update(units_t).where(self._key(stage, video_id, unit_key)).values(**values))
            if res.rowcount == 0:  # never claimed (e.g. recorded by a tool): create it in that state
                self._insert_if_absent(
                    con, dict(stage=stage, video_id=video_id, unit_key=unit_key, attempts=1, **values)
                )

    def mark_done(self, stage: str, video_id: str, unit_key: str) -> None:
        self._set_final(stage, video_id, unit_key, dict(state="done", error=None, retryable=False))

    def mark_failed(self, stage: str, video_id: str, unit_key: str, error: str, retryable: bool) -> None:
        """Record a failure; `retryable` failures may be claimed again, others only with force=True."""
        self._set_final(stage, video_id, unit_key, dict(state="failed", error=error, retryable=bool(retryable)))

    def unit(self, stage: str, video_id: str, unit_key: str) -> UnitRecord | None:
        cols = [c for c in units_t.c if c.name != "id"]
        with self.engine.connect() as con:
            row = con.execute(select(*cols).where(self._key(stage, video_id, unit_key))).first()
        return UnitRecord(**row._asdict()) if row else None

    def unit_state(self, stage: str, video_id: str, unit_key: str) -> str | None:
        """'pending' | 'running' | 'done' | 'failed', or None when the unit is unknown."""
        with self.engine.connect() as con:
            return con.execute(select(units_t.c.state).where(self._key(stage, video_id, unit_key))).scalar()

    def stage_counts(self) -> dict[str, dict[str, int]]:
        """{stage: {state: count}} over all units."""
        q = select(units_t.c.stage, units_t.c.state, func.count()).group_by(units_t.c.stage, units_t.c.state)
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as con:
            for stage, state, n in con.execute(q):
                out.setdefault(stage, {})[state] = int(n)
        return out

    def units(self, stage: str | None = None, state: str | None = None) -> list[UnitRecord]:
        cols = [c for c in units_t.c if c.name != "id"]
        q = select(*cols).order_by(units_t.c.stage, units_t.c.video_id, units_t.c.unit_key)
        if stage is not None:
            q = q.where(units_t.c.stage == stage)
        if state is not None:
            q = q.where(units_t.c.state == state)
        with self.engine.connect() as con:
            return [UnitRecord(**row._asdict()) for row in con.execute(q)]

    def failures(self, stage: str | None = None) -> list[UnitRecord]:
        """Failed units (with their error text), optionally of one stage."""
        return self.units(stage=stage, state="failed")
