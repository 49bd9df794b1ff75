"""Units of work in the catalog: states, claims with short leases renewed by a heartbeat, releases.

A *unit* is (stage, video_id, unit_key), e.g. ("track", <sha256>, <track_key>). Its state moves
pending -> running -> done | failed (and back to pending when re-queued or released). ``claim_unit`` is
the only way to move a unit to running and it is atomic across processes and machines: one conditional
INSERT, then one conditional UPDATE, and the database's rowcount decides who won.

Leases: a running claim stays its holder's while the holder shows a sign of life, i.e. renews it
(``renew_claims``, which a worker calls every few tens of seconds while it works) within ``lease_s``
(default DEFAULT_LEASE_S). A claim nobody renewed for longer may be taken over by any worker, on any
host: this is what frees the claims of a killed worker, including a container's PID 1 or a worker of
another machine whose pid cannot be checked from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from storage.catalog.records import DEFAULT_LEASE_S, UnitRecord, now_utc
from storage.catalog.tables import units_t
from storage.layout import STAGE_TABLES

__all__ = ["UnitsMixin", "UnitRef"]

UnitRef = tuple[str, str, str]  # (stage, video_id, unit_key)
_CHUNK = 300  # units per IN (...) list: far below every backend's bound-parameter limit


def _key(stage: str, video_id: str, unit_key: str) -> ColumnElement[bool]:
    return (units_t.c.stage == stage) & (units_t.c.video_id == video_id) & (units_t.c.unit_key == unit_key)


def _chunks(units: list[UnitRef]) -> Iterable[list[UnitRef]]:
    for i in range(0, len(units), _CHUNK):
        yield units[i : i + _CHUNK]


def _alive_before(cutoff: dt.datetime) -> ColumnElement[bool]:
    """The claim's last sign of life (heartbeat, else the claim itself) is older than `cutoff`."""
    return func.coalesce(units_t.c.heartbeat_at, units_t.c.claimed_at) < cutoff


class UnitsMixin:
    """Unit states and claims; mixed into storage.catalog.Catalog."""

    engine: Engine

    def _require_writable(self, what: str) -> None:  # pragma: no cover - provided by Catalog
        raise NotImplementedError

    # -- recording ------------------------------------------------------------------------------
    def _insert_if_absent(self, con: Connection, values: dict[str, Any]) -> int:
        """INSERT the unit row unless (stage, video_id, unit_key) exists; returns rows inserted."""
        dialect = self.engine.dialect.name
        if dialect in ("sqlite", "postgresql"):
            # RETURNING, not rowcount: psycopg reports rowcount -1 for an INSERT that SQLAlchemy gives an
            # implicit RETURNING clause (the primary key), so only the returned rows tell who inserted.
            mod = __import__(f"sqlalchemy.dialects.{dialect}", fromlist=["insert"])
            stmt = mod.insert(units_t).values(**values).on_conflict_do_nothing(
                index_elements=["stage", "video_id", "unit_key"]
            ).returning(units_t.c.id)
            return len(con.execute(stmt).fetchall())
        try:  # other backends: the unique constraint decides
            with con.begin_nested():
                return int(con.execute(insert(units_t).values(**values)).rowcount)
        except IntegrityError:
            return 0

    def claim_unit(
        self,
        stage: str,
        video_id: str,
        unit_key: str,
        worker_id: str,
        uri: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        force: bool = False,
    ) -> bool:
        """Atomically claim a unit for `worker_id`; True when this caller now owns it.

        Claimable: absent, 'pending', 'running' with no sign of life (heartbeat, else the claim) for
        `lease_s` seconds, 'failed' when that failure was retryable (or `force`). Never 'done'.
        """
        self._require_writable("claiming a unit")
        now = now_utc()
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
        failed = units_t.c.state == "failed"
        claimable = or_(
            units_t.c.state == "pending",
            (units_t.c.state == "running") & _alive_before(now - dt.timedelta(seconds=lease_s)),
            failed if force else failed & units_t.c.retryable.is_(True),
        )
        values: dict[str, Any] = dict(
            state="running", worker_id=worker_id, claimed_at=now, heartbeat_at=None, updated_at=now,
            attempts=units_t.c.attempts + 1,
        )
        if uri is not None:
            values["uri"] = uri
        with self.engine.begin() as con:
            res = con.execute(update(units_t).where(_key(stage, video_id, unit_key) & claimable).values(**values))
        return res.rowcount == 1

    def renew_claims(self, worker_id: str, units: Iterable[UnitRef] | None = None) -> int:
        """Heartbeat: bump `heartbeat_at` of the running units held by `worker_id` (all of them, or only
        `units`); returns how many were renewed. One UPDATE (per few hundred units)."""
        self._require_writable("renewing claims")
        now = now_utc()
        held = (units_t.c.state == "running") & (units_t.c.worker_id == worker_id)
        with self.engine.begin() as con:
            if units is None:
                return int(con.execute(update(units_t).where(held).values(heartbeat_at=now)).rowcount)
            n = 0
            for chunk in _chunks(list(units)):
                where = held & tuple_(units_t.c.stage, units_t.c.video_id, units_t.c.unit_key).in_(chunk)
                n += int(con.execute(update(units_t).where(where).values(heartbeat_at=now)).rowcount)
            return n

    def held_claims(self) -> list[UnitRecord]:
        """Running units with their owner (`worker_id`) and ages; `is_stale(lease_s)` tells the dead ones."""
        return self.units(state="running")

    def release_claims(
        self,
        worker_id: str | None = None,
        units: Iterable[UnitRef] | None = None,
        stale_only: bool = False,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> int:
        """Put running units back to pending (by hand, or for a worker that is known to be gone).

        Filters combine: only `worker_id`'s claims, only `units`, only claims with no sign of life for
        `lease_s` seconds (`stale_only`). With no filter every running unit is released. Returns how many.
        """
        self._require_writable("releasing claims")
        now = now_utc()
        where: ColumnElement[bool] = units_t.c.state == "running"
        if worker_id is not None:
            where = where & (units_t.c.worker_id == worker_id)
        if stale_only:
            where = where & _alive_before(now - dt.timedelta(seconds=lease_s))
        values = dict(state="pending", worker_id=None, claimed_at=None, heartbeat_at=None, updated_at=now)
        with self.engine.begin() as con:
            if units is None:
                return int(con.execute(update(units_t).where(where).values(**values)).rowcount)
            n = 0
            for chunk in _chunks(list(units)):
                key = tuple_(units_t.c.stage, units_t.c.video_id, units_t.c.unit_key).in_(chunk)
                n += int(con.execute(update(units_t).where(where & key).values(**values)).rowcount)
            return n

    def requeue_unit(self, stage: str, video_id: str, unit_key: str, reason: str | None = None) -> bool:
        """Put a done or failed unit back to pending so the next run redoes it (e.g. its file was lost or
        set aside); `reason` is kept in `error`. True when the unit was re-queued."""
        self._require_writable("re-queueing a unit")
        with self.engine.begin() as con:
            res = con.execute(
                update(units_t)
                .where(_key(stage, video_id, unit_key) & units_t.c.state.in_(("done", "failed")))
                .values(state="pending", error=reason, retryable=False, rows=None, table_rows=None,
                        worker_id=None, claimed_at=None, heartbeat_at=None, updated_at=now_utc())
            )
        return res.rowcount == 1

    def add_pending(self, stage: str, video_id: str, unit_key: str, uri: str | None = None) -> bool:
        """Record a unit as pending unless it is already known; True when it was added."""
        self._require_writable("recording a unit")
        now = now_utc()
        with self.engine.begin() as con:
            return 1 == self._insert_if_absent(
                con,
                dict(stage=stage, video_id=video_id, unit_key=unit_key, uri=uri, state="pending",
                     attempts=0, retryable=False, updated_at=now),
            )

    def _set_final(self, stage: str, video_id: str, unit_key: str, values: dict[str, Any]) -> None:
        values = {**values, "updated_at": now_utc(), "heartbeat_at": None}
        with self.engine.begin() as con:
            res = con.execute(update(units_t).where(_key(stage, video_id, unit_key)).values(**values))
            if res.rowcount == 0:  # never claimed (e.g. recorded by a tool): create it in that state
                self._insert_if_absent(
                    con, dict(stage=stage, video_id=video_id, unit_key=unit_key, attempts=1, **values)
                )

    def mark_done(
        self, stage: str, video_id: str, unit_key: str, rows: int | Mapping[str, int] | None = None
    ) -> None:
        """Record a unit as done. `rows`: the row count of the stage's primary table (an int), or
        {table: rows} for several of its tables; `Store.verify` compares the files against it."""
        self._require_writable("marking a unit done")
        primary: int | None
        table_rows: dict[str, int] | None = None
        if rows is None or isinstance(rows, int):
            primary = rows
        else:
            table_rows = {str(t): int(n) for t, n in rows.items()}
            first = STAGE_TABLES.get(stage, (None,))[0]
            primary = table_rows.get(first) if first else None
        self._set_final(stage, video_id, unit_key,
                        dict(state="done", error=None, retryable=False, rows=primary, table_rows=table_rows))

    def mark_failed(self, stage: str, video_id: str, unit_key: str, error: str, retryable: bool) -> None:
        """Record a failure; `retryable` failures may be claimed again, others only with force=True."""
        self._require_writable("marking a unit failed")
        self._set_final(stage, video_id, unit_key, dict(state="failed", error=error, retryable=bool(retryable)))

    # -- reading ------------------------------------------------------------------------------------
    def unit(self, stage: str, video_id: str, unit_key: str) -> UnitRecord | None:
        with self.engine.connect() as con:
            row = con.execute(select(units_t).where(_key(stage, video_id, unit_key))).first()
        return UnitRecord.from_row(row._asdict()) if row else None

    def unit_state(self, stage: str, video_id: str, unit_key: str) -> str | None:
        """'pending' | 'running' | 'done' | 'failed', or None when the unit is unknown."""
        with self.engine.connect() as con:
            state = con.execute(select(units_t.c.state).where(_key(stage, video_id, unit_key))).scalar()
        return None if state is None else str(state)

    def stage_counts(self) -> dict[str, dict[str, int]]:
        """{stage: {state: count}} over all units."""
        q = select(units_t.c.stage, units_t.c.state, func.count()).group_by(units_t.c.stage, units_t.c.state)
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as con:
            for stage, state, n in con.execute(q):
                out.setdefault(stage, {})[state] = int(n)
        return out

    def units(self, stage: str | None = None, state: str | None = None) -> list[UnitRecord]:
        q = select(units_t).order_by(units_t.c.stage, units_t.c.video_id, units_t.c.unit_key)
        if stage is not None:
            q = q.where(units_t.c.stage == stage)
        if state is not None:
            q = q.where(units_t.c.state == state)
        now = now_utc()
        with self.engine.connect() as con:
            return [UnitRecord.from_row(row._asdict(), now) for row in con.execute(q)]

    def failures(self, stage: str | None = None) -> list[UnitRecord]:
        """Failed units (with their error text), optionally of one stage."""
        return self.units(stage=stage, state="failed")
