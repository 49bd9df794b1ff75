"""A store that heals: per-unit file checks, quarantine, verify / repair for each kind of damage, and views
that never fail nor gain NULL rows because of one bad file."""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage import table_from_records
from storage.query import run_query
from storage.schemas import STAGE_TABLES

STAGE_OF = {t: s for s, ts in STAGE_TABLES.items() for t in ts}


@pytest.fixture
def healthy(populated):
    """The populated store with every unit recorded done in the catalog with its row counts (as the flows do)."""
    units: dict[tuple[str, str, str], dict[str, int]] = {}
    for table in ("videos", "objects", "object_frames", "descriptions"):
        for vid, key in populated.list_units(table):
            rows = pq.read_metadata(populated.unit_path(table, vid, key)).num_rows
            units.setdefault((STAGE_OF[table], vid, key), {})[table] = rows
    for (stage, vid, key), rows in units.items():
        populated.catalog.mark_done(stage, vid, key, rows=rows)
    assert populated.verify().clean
    return populated


def _path(store, table, vid, key):
    return store.unit_path(table, vid, key)


def _count(store, sql):
    return run_query(store.db_path, sql)[1][0][0]


def _damage(store, fx, kind):
    """Apply one kind of damage; returns (table, video_id, unit_key) of the damaged file."""
    a, new = fx.VIDEO_A, fx.NEW_TRACK
    if kind == "missing":
        os.remove(_path(store, "objects", a, new))
        return "objects", a, new
    if kind == "unreadable_truncated":
        path = _path(store, "object_frames", a, new)
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
        return "object_frames", a, new
    if kind == "unreadable_garbage":
        open(_path(store, "descriptions", a, "desc-v1"), "wb").write(os.urandom(300))
        return "descriptions", a, "desc-v1"
    if kind == "foreign_schema":
        pq.write_table(pa.table({"video_id": [a], "what": ["not ours"]}), _path(store, "objects", fx.VIDEO_B, new))
        return "objects", fx.VIDEO_B, new
    if kind == "row_count_mismatch":  # a valid file, but not the one the catalog recorded (3 rows)
        store.write_unit("objects", a, new, table_from_records("objects", [
            fx.object_row(a, new, 1, 0.0, 0.3, "red", 180.0, tracked_at=fx.T0)]))
        return "objects", a, new
    raise AssertionError(kind)


KINDS = ["missing", "unreadable_truncated", "unreadable_garbage", "foreign_schema", "row_count_mismatch"]


@pytest.mark.parametrize("kind", KINDS)
def test_check_unit_names_each_kind_of_damage(healthy, fx, kind):
    table, vid, key = _damage(healthy, fx, kind)
    state = healthy.check_unit(table, vid, key)
    assert state.state == kind.split("_")[0] if kind.startswith("unreadable") else state.state == kind
    assert state.reason and not state.ok
    assert healthy.check_unit("videos", fx.VIDEO_A, "probe").ok


@pytest.mark.parametrize("kind", KINDS)
def test_verify_finds_each_damage_and_repair_requeues_the_unit(healthy, fx, kind):
    table, vid, key = _damage(healthy, fx, kind)
    stage = STAGE_OF[table]
    report = healthy.verify()
    assert not report.ok and [(f.kind, f.table, f.video_id, f.unit_key) for f in report.findings] == [
        (healthy.check_unit(table, vid, key).state, table, vid, key)]
    assert "--repair" in report.text()
    repaired = healthy.verify(repair=True)
    assert repaired.ok and not repaired.clean and repaired.findings[0].repaired
    unit = healthy.catalog.unit(stage, vid, key)
    assert unit.state == "pending" and "set aside" in unit.error  # the next run redoes it
    for t in STAGE_TABLES[stage]:  # the whole unit is redone: none of its files is left to the views
        assert not healthy.has_unit(t, vid, key)
    if kind != "missing":
        (record,) = [q for q in healthy.catalog.quarantined() if q.table_name == table]
        moved = os.path.join(healthy.root, record.path)
        assert record.path.startswith(f"quarantine/{table}/video_id={vid}/{key}.") and os.path.isfile(moved)
        note = json.loads(open(moved[: -len(".parquet")] + ".reason.json").read())
        assert note["table"] == table and note["reason"] == record.reason
    assert healthy.verify().clean  # healed: nothing left to report until the unit is redone


def test_orphan_files_are_found_and_set_aside(healthy, fx):
    healthy.catalog.mark_failed("describe", fx.VIDEO_B, "desc-v1", "model crashed", retryable=True)
    report = healthy.verify()
    assert [(f.kind, f.table, f.unit_key) for f in report.findings] == [("orphan", "descriptions", "desc-v1")]
    assert "failed" in report.findings[0].reason
    assert healthy.verify(repair=True).ok
    assert not healthy.has_unit("descriptions", fx.VIDEO_B, "desc-v1") and healthy.verify().clean
    assert healthy.catalog.unit_state("describe", fx.VIDEO_B, "desc-v1") == "failed"  # its retry is unchanged


def test_files_the_catalog_does_not_know_are_adopted_when_complete(healthy, fx):
    from sqlalchemy import delete

    from storage.catalog import units_t

    with healthy.catalog.engine.begin() as con:  # the catalog lost two units
        con.execute(delete(units_t).where(units_t.c.video_id == fx.VIDEO_B))
    os.remove(_path(healthy, "object_frames", fx.VIDEO_B, fx.NEW_TRACK))  # ...and one of them is incomplete
    report = healthy.verify()
    kinds = sorted((f.kind, f.table) for f in report.findings)
    assert kinds == [("unrecorded", "descriptions"), ("unrecorded", "objects"), ("unrecorded", "videos")]
    healthy.verify(repair=True)
    assert healthy.catalog.unit("ingest", fx.VIDEO_B, "probe").rows == 1  # complete: adopted as done
    assert healthy.catalog.unit("track", fx.VIDEO_B, fx.NEW_TRACK) is None  # incomplete: set aside
    assert not healthy.has_unit("objects", fx.VIDEO_B, fx.NEW_TRACK)
    assert healthy.verify().clean


def test_units_being_worked_on_are_left_alone(healthy, fx):
    healthy.catalog.requeue_unit("describe", fx.VIDEO_B, "desc-v1")
    assert healthy.catalog.claim_unit("describe", fx.VIDEO_B, "desc-v1", "w1")  # written, not yet marked done
    report = healthy.verify(repair=True)
    assert report.clean and report.in_progress == 1 and healthy.has_unit("descriptions", fx.VIDEO_B, "desc-v1")


def test_a_bad_file_never_fails_a_view_nor_adds_null_rows(healthy, fx):
    before = {t: _count(healthy, f"SELECT count(*) FROM {t}") for t in ("objects", "object_frames", "descriptions")}
    _damage(healthy, fx, "foreign_schema")  # replaces B's objects (1 row)
    _damage(healthy, fx, "unreadable_truncated")  # A's latest object_frames (8 rows)
    _damage(healthy, fx, "unreadable_garbage")  # A's desc-v1 (2 rows)
    report = healthy.refresh_views()
    assert len(report.quarantined) == 3
    after = {t: _count(healthy, f"SELECT count(*) FROM {t}") for t in before}
    assert after == {"objects": before["objects"] - 1, "object_frames": before["object_frames"] - 8,
                     "descriptions": before["descriptions"] - 2}
    assert _count(healthy, "SELECT count(*) FROM objects WHERE track_key IS NULL OR object_id IS NULL") == 0
    # A's newer tracking is re-queued (its frames were set aside): A's older, done tracking is current until
    # it is redone; B's only tracking lost its objects file: B has no current tracking
    assert run_query(healthy.db_path, "SELECT video_id, track_key FROM latest_tracks")[1] == [(fx.VIDEO_A, fx.OLD_TRACK)]
    assert _count(healthy, "SELECT count(*) FROM latest_object_frames") == 2
    assert {q.table_name for q in healthy.catalog.quarantined()} == {"objects", "object_frames", "descriptions"}
    assert healthy.catalog.unit_state("track", fx.VIDEO_B, fx.NEW_TRACK) == "pending"


def test_quarantine_of_a_missing_file_still_requeues(healthy, fx):
    os.remove(_path(healthy, "videos", fx.VIDEO_B, "probe"))
    assert healthy.quarantine("videos", fx.VIDEO_B, "probe", "lost") is None
    assert healthy.catalog.unit_state("ingest", fx.VIDEO_B, "probe") == "pending"
