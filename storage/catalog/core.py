"""The Catalog: runs, prompts, unit states (storage.catalog.units), requests, video paths, quarantine.

SQLite file by default (``<store root>/catalog.sqlite``, WAL mode, busy timeout), any SQLAlchemy URL
otherwise (``postgresql+psycopg://...`` when several machines share one store). All times are naive
UTC datetimes (the same on every backend). A catalog opened ``read_only`` never writes: every method
that would raises ReadOnlyStoreError naming what needed write access.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from storage.catalog.records import (
    RUN_LEASE_S,
    QuarantineRecord,
    RequestRecord,
    RunRecord,
    VideoPathRecord,
    now_utc,
)
from storage.catalog.schema import init_schema, make_engine
from storage.catalog.tables import (
    prompts_t,
    quarantine_t,
    requests_t,
    runs_t,
    schema_version_t,
    video_paths_t,
)
from storage.catalog.units import UnitsMixin
from storage.errors import ReadOnlyStoreError, StoreError

__all__ = ["Catalog"]

log = logging.getLogger(__name__)


class Catalog(UnitsMixin):
    """Runs, prompts and unit states in one SQL database (see module docstring)."""

    def __init__(self, url: str, echo: bool = False, read_only: bool = False):
        self.url = url
        self.read_only = read_only
        self.engine: Engine = make_engine(url, read_only=read_only, echo=echo)
        try:
            init_schema(self.engine, url, read_only)
        except BaseException:
            self.engine.dispose()
            raise

    def _require_writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(self.engine.url.render_as_string(), what)

    def schema_version(self) -> int:
        with self.engine.connect() as con:
            return int(con.execute(select(func.max(schema_version_t.c.version))).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()

    # -- runs ---------------------------------------------------------------------------------------
    def start_run(self, kind: str, params: dict[str, Any], host: str | None = None, pid: int | None = None) -> str:
        """Record a new run (status 'running', this host and pid unless given); returns its id (uuid4 hex)."""
        self._require_writable("starting a run")
        run_id = uuid.uuid4().hex
        now = now_utc()
        with self.engine.begin() as con:
            con.execute(
                insert(runs_t).values(
                    id=run_id, kind=kind, params=params, started_at=now, status="running",
                    host=host if host is not None else socket.gethostname(),
                    pid=pid if pid is not None else os.getpid(), heartbeat_at=now,
                )
            )
        return run_id

    def heartbeat_run(self, run_id: str) -> None:
        """A sign of life of a running run (call it every minute or so while the run works)."""
        self._require_writable("recording a run heartbeat")
        with self.engine.begin() as con:
            res = con.execute(update(runs_t).where(runs_t.c.id == run_id).values(heartbeat_at=now_utc()))
        if res.rowcount != 1:
            raise StoreError(f"no run {run_id!r} in catalog {self.url}")

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        self._require_writable("finishing a run")
        now = now_utc()
        with self.engine.begin() as con:
            res = con.execute(
                update(runs_t)
                .where(runs_t.c.id == run_id)
                .values(status=status, summary=summary, finished_at=now, heartbeat_at=now)
            )
        if res.rowcount != 1:
            raise StoreError(f"no run {run_id!r} in catalog {self.url}")

    def runs(self, limit: int = 50, kind: str | None = None, lease_s: float = RUN_LEASE_S) -> list[RunRecord]:
        """Most recent first, each with its effective status ('crashed' for a dead 'running' run)."""
        q = select(runs_t).order_by(runs_t.c.started_at.desc()).limit(limit)
        if kind is not None:
            q = q.where(runs_t.c.kind == kind)
        now = now_utc()
        with self.engine.connect() as con:
            return [RunRecord.from_row(row._asdict(), now, lease_s) for row in con.execute(q)]

    def run(self, run_id: str, lease_s: float = RUN_LEASE_S) -> RunRecord | None:
        with self.engine.connect() as con:
            row = con.execute(select(runs_t).where(runs_t.c.id == run_id)).first()
        return RunRecord.from_row(row._asdict(), lease_s=lease_s) if row else None

    # -- prompts ------------------------------------------------------------------------------------
    def upsert_prompt(self, prompt_id: str, text: str, task: str) -> None:
        """Record a prompt once (first_seen is kept on later calls)."""
        self._require_writable("recording a prompt")
        with self.engine.begin() as con:
            exists = con.execute(select(prompts_t.c.prompt_id).where(prompts_t.c.prompt_id == prompt_id)).first()
            if exists:
                return
            try:
                with con.begin_nested():
                    con.execute(
                        insert(prompts_t).values(prompt_id=prompt_id, text=text, task=task, first_seen=now_utc())
                    )
            except IntegrityError:  # another process inserted it in between
                pass

    def prompts(self) -> list[dict[str, Any]]:
        with self.engine.connect() as con:
            return [row._asdict() for row in con.execute(select(prompts_t).order_by(prompts_t.c.first_seen))]

    # -- upserts shared by requests and video paths ---------------------------------------------------
    def _upsert(self, table: Any, keys: dict[str, Any], insert_values: dict[str, Any],
                update_values: dict[str, Any]) -> None:
        dialect = self.engine.dialect.name
        with self.engine.begin() as con:
            if dialect in ("sqlite", "postgresql"):
                mod = __import__(f"sqlalchemy.dialects.{dialect}", fromlist=["insert"])
                stmt = mod.insert(table).values(**keys, **insert_values)
                con.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=update_values))
                return
            where = [table.c[k] == v for k, v in keys.items()]
            if con.execute(update(table).where(*where).values(**update_values)).rowcount == 0:
                con.execute(insert(table).values(**keys, **insert_values))

    # -- requests: what each run asked for ("latest" = asked for last) ---------------------------------
    def record_request(self, run_id: str | None, stage: str, video_id: str, unit_key: str) -> None:
        """Record that run `run_id` asks for a unit now (call it also when the unit is skipped as done):
        the views' latest tracking of a video is the done tracking asked for most recently."""
        self._require_writable("recording a request")
        now = now_utc()
        self._upsert(
            requests_t, dict(stage=stage, video_id=video_id, unit_key=unit_key),
            dict(run_id=run_id, requested_at=now, n_requests=1),
            dict(run_id=run_id, requested_at=now, n_requests=requests_t.c.n_requests + 1),
        )

    def requests(self, stage: str | None = None) -> list[RequestRecord]:
        q = select(requests_t).order_by(requests_t.c.requested_at)
        if stage is not None:
            q = q.where(requests_t.c.stage == stage)
        with self.engine.connect() as con:
            return [RequestRecord(**row._asdict()) for row in con.execute(q)]

    # -- video paths: every name a video was found under ---------------------------------------------
    def record_video_path(self, video_id: str, uri: str, size_bytes: int | None = None) -> None:
        """Record that `video_id`'s bytes were found at `uri` (first_seen kept, last_seen updated)."""
        self._require_writable("recording a video path")
        now = now_utc()
        self._upsert(
            video_paths_t, dict(video_id=video_id, uri=uri),
            dict(size_bytes=size_bytes, first_seen=now, last_seen=now),
            dict(size_bytes=size_bytes, last_seen=now),
        )

    def video_paths(self, video_id: str | None = None) -> list[VideoPathRecord]:
        q = select(video_paths_t).order_by(video_paths_t.c.video_id, video_paths_t.c.first_seen,
                                           video_paths_t.c.uri)
        if video_id is not None:
            q = q.where(video_paths_t.c.video_id == video_id)
        with self.engine.connect() as con:
            return [VideoPathRecord(**row._asdict()) for row in con.execute(q)]

    # -- quarantine records --------------------------------------------------------------------------
    def record_quarantine(self, table_name: str, video_id: str, unit_key: str, path: str, reason: str) -> int:
        """Record a file set aside (`path` relative to the store root); returns the record id."""
        self._require_writable("recording a quarantined file")
        with self.engine.begin() as con:
            res = con.execute(insert(quarantine_t).values(
                table_name=table_name, video_id=video_id, unit_key=unit_key, path=path, reason=reason,
                quarantined_at=now_utc()))
            key = res.inserted_primary_key
            assert key is not None
            return int(key[0])

    def quarantined(self, limit: int | None = None) -> list[QuarantineRecord]:
        """Files set aside, most recent first."""
        q = select(quarantine_t).order_by(quarantine_t.c.quarantined_at.desc(), quarantine_t.c.id.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as con:
            return [QuarantineRecord(**row._asdict()) for row in con.execute(q)]
