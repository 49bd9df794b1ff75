"""A store that heals: per-unit file checks, quarantine, and verify / repair of the whole store.

- `check_unit`: one unit file from its Parquet footer (storage.unitfiles.inspect_file), with the row count
  the catalog recorded at mark_done.
- `quarantine`: move a bad file to ``<root>/quarantine/<table>/video_id=<id>/<unit_key>.<utc>.parquet``
  with a ``.reason.json`` next to it, record it in the catalog (`Catalog.quarantined`) and re-queue its
  unit (state back to pending: the next run redoes it).
- `verify`: every unit the catalog records as done against its files (exists, readable, schema, row
  count), and every file against the catalog. Kinds of finding: the four bad file states of a done unit;
  'orphan' (a file whose unit is pending or failed: a leftover of an attempt); 'unrecorded' (a file whose
  unit the catalog does not know). Units being worked on ('running') are left alone.
  `repair=True`: bad files of done units are quarantined and their units re-queued (a missing file's unit
  is re-queued; the unit's other files are set aside too, as the whole unit is redone); orphans are quarantined; an unrecorded unit whose every file is healthy is adopted
  (recorded as done with its row counts), otherwise its files are quarantined. Then the views are
  refreshed, so what was set aside leaves them at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from storage.catalog import UnitRecord
from storage.layout import STAGE_TABLES, TABLE_STAGE
from storage.unitfiles import UnitFileState, inspect_file, list_unit_files

if TYPE_CHECKING:
    from storage.store import Store

__all__ = ["QUARANTINE_DIR", "VerifyFinding", "VerifyReport", "check_unit", "quarantine", "verify"]

log = logging.getLogger(__name__)

QUARANTINE_DIR = "quarantine"
FindingKind = Literal["missing", "unreadable", "foreign_schema", "row_count_mismatch", "orphan", "unrecorded"]


def expected_rows(unit: UnitRecord | None, table: str) -> int | None:
    """The row count the catalog recorded for `table`'s file of `unit` (None: not recorded)."""
    if unit is None or unit.state != "done":
        return None
    if unit.table_rows and table in unit.table_rows:
        return int(unit.table_rows[table])
    tables = STAGE_TABLES.get(unit.stage, ())
    return unit.rows if tables and tables[0] == table else None


def check_unit(store: Store, table: str, video_id: str, unit_key: str,
               expected: int | None = None) -> UnitFileState:
    if expected is None and table in TABLE_STAGE:
        expected = expected_rows(store.catalog.unit(TABLE_STAGE[table], video_id, unit_key), table)
    return inspect_file(store, table, video_id, unit_key, expected)


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def quarantine(store: Store, table: str, video_id: str, unit_key: str, reason: str, requeue: bool = True) -> str | None:
    store.require_writable(f"setting aside {table} unit {unit_key!r}")
    src = store.unit_path(table, video_id, unit_key)
    rel: str | None = None
    if store.fs.exists(src):
        rel = f"{QUARANTINE_DIR}/{table}/video_id={video_id}/{unit_key}.{_stamp()}.parquet"
        dest = f"{store.root}/{rel}"
        store.fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
        if store.is_local:
            os.replace(src, dest)
        else:
            store.fs.mv(src, dest)
        note = {"table": table, "video_id": video_id, "unit_key": unit_key, "reason": reason,
                "original_path": src[len(store.root) + 1 :], "quarantined_at": dt.datetime.now(dt.UTC).isoformat()}
        with store.fs.open(dest[: -len(".parquet")] + ".reason.json", "w") as fh:
            fh.write(json.dumps(note, indent=1) + "\n")
        store.catalog.record_quarantine(table, video_id, unit_key, rel, reason)
        log.warning("set aside %s unit %s of video %s (%s): now %s", table, unit_key, video_id[:12], reason, rel)
    if requeue and table in TABLE_STAGE:
        stage = TABLE_STAGE[table]
        if store.catalog.requeue_unit(stage, video_id, unit_key, reason=f"{table} file set aside: {reason}"):
            log.info("re-queued %s unit %s of video %s", stage, unit_key, video_id[:12])
    return rel


@dataclass(frozen=True)
class VerifyFinding:
    """One problem `verify` found; `action` says what repair did ('' when not repaired)."""

    kind: FindingKind
    table: str
    video_id: str
    unit_key: str
    stage: str | None
    reason: str
    action: str = ""

    @property
    def repaired(self) -> bool:
        return bool(self.action)

    def text(self) -> str:
        done = f" -> {self.action}" if self.action else ""
        return f"{self.kind:<18} {self.table}/video_id={self.video_id[:16]}/{self.unit_key}: {self.reason}{done}"


@dataclass
class VerifyReport:
    """What `Store.verify` found. `clean`: nothing found; `ok`: nothing left unrepaired."""

    units_checked: int = 0
    files_checked: int = 0
    in_progress: int = 0
    repair: bool = False
    findings: list[VerifyFinding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    @property
    def problems_left(self) -> list[VerifyFinding]:
        return [f for f in self.findings if not f.repaired]

    @property
    def ok(self) -> bool:
        return not self.problems_left

    def text(self) -> str:
        lines = [f"checked {self.units_checked} done unit(s) and {self.files_checked} file(s)"
                 + (f"; {self.in_progress} unit(s) being worked on were left alone" if self.in_progress else "")]
        lines += ["  " + f.text() for f in self.findings]
        if self.clean:
            lines.append("no problems found")
        elif self.ok:
            lines.append(f"{len(self.findings)} problem(s) found, all repaired")
        else:
            hint = "" if self.repair else " (run with --repair to set bad files aside and redo their units)"
            lines.append(f"{len(self.problems_left)} problem(s) left{hint}")
        return "\n".join(lines)


def verify(store: Store, repair: bool = False) -> VerifyReport:
    if repair:
        store.require_writable("repairing the store")
    report = VerifyReport(repair=repair)
    units = {(u.stage, u.video_id, u.unit_key): u for u in store.catalog.units()}
    files = list_unit_files(store)
    present = {(t, f.video_id, f.unit_key) for t, fs in files.items() for f in fs}
    findings: list[VerifyFinding] = []

    # 1. every done unit against its files; a unit with one bad file is redone whole, so on repair its
    #    healthy files are set aside too (nothing of it is left for the views nor as an orphan)
    for (stage, vid, key), done in units.items():
        if done.state != "done" or stage not in STAGE_TABLES:
            continue
        report.units_checked += 1
        states = [inspect_file(store, table, vid, key, expected_rows(done, table)) for table in STAGE_TABLES[stage]]
        bad = [st for st in states if not st.ok]
        if not bad:
            continue
        for st in bad:
            action = ""
            if repair:
                moved = quarantine(store, st.table, vid, key, st.reason or st.state)
                action = f"set aside as {moved}, unit re-queued" if moved else "unit re-queued"
            kind: FindingKind = st.state  # type: ignore[assignment]  # not 'ok' here
            findings.append(VerifyFinding(kind, st.table, vid, key, stage, st.reason or st.state, action))
        if repair:
            why = f"its {stage} unit is redone ({bad[0].table}: {bad[0].state})"
            for st in states:
                if st.ok:
                    quarantine(store, st.table, vid, key, why, requeue=False)

    # 2. every file against the catalog
    unrecorded: dict[tuple[str, str, str], list[tuple[str, UnitFileState]]] = {}
    for table, table_files in files.items():
        file_stage = TABLE_STAGE.get(table)
        for f in table_files:
            report.files_checked += 1
            unit = units.get((file_stage, f.video_id, f.unit_key)) if file_stage else None
            if unit is not None and unit.state == "done":
                continue  # checked above
            if unit is not None and unit.state == "running":
                report.in_progress += 1
                continue
            st = inspect_file(store, table, f.video_id, f.unit_key)
            if unit is None and file_stage is not None:
                unrecorded.setdefault((file_stage, f.video_id, f.unit_key), []).append((table, st))
                continue
            reason = f"its {file_stage} unit is {unit.state if unit else 'unknown'}; no done unit vouches for it"
            if not st.ok:
                reason += f"; {st.reason}"
            action = ""
            if repair:
                action = f"set aside as {quarantine(store, table, f.video_id, f.unit_key, reason, requeue=False)}"
            findings.append(VerifyFinding("orphan", table, f.video_id, f.unit_key, file_stage, reason, action))

    # 3. units the catalog does not know: adopt the complete and healthy ones, set the rest aside
    for (ustage, vid, key), unit_states in sorted(unrecorded.items()):
        tables = STAGE_TABLES[ustage]
        complete = all((t, vid, key) in present for t in tables) and all(st.ok for _, st in unit_states)
        for table, st in unit_states:
            reason = "the catalog has no unit for this file" + ("" if st.ok else f"; {st.reason}")
            if not complete and st.ok:
                missing = [t for t in tables if (t, vid, key) not in present]
                reason += f" (the unit is incomplete: no {', '.join(missing)} file)" if missing else ""
            action = ""
            if repair:
                if complete:
                    action = "adopted: recorded as done"
                else:
                    action = f"set aside as {quarantine(store, table, vid, key, reason, requeue=False)}"
            findings.append(VerifyFinding("unrecorded", table, vid, key, ustage, reason, action))
        if repair and complete:
            rows = {t: st.rows or 0 for t, st in unit_states}
            store.catalog.mark_done(ustage, vid, key, rows=rows)
            log.info("adopted %s unit %s of video %s (files present, no catalog record)", ustage, key, vid[:12])

    report.findings = findings
    if repair and findings:
        store.refresh_views()
    return report
