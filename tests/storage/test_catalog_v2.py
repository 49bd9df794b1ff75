"""Catalog schema v2: safe concurrent creation, in-place migration of v1 catalogs, leases renewed by a
heartbeat, releases, crashed runs, requests ("latest" = asked for last), video paths, read-only opens."""

import datetime as dt
import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect, update

from storage import Catalog, ReadOnlyStoreError, Store
from storage.catalog import CATALOG_SCHEMA_VERSION, runs_t, units_t

FIXTURES = Path(__file__).parent / "fixtures"


def _now():
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _age(catalog, table, seconds, **where):
    """Make the claims/heartbeats of rows matching `where` look `seconds` old."""
    old = _now() - dt.timedelta(seconds=seconds)
    t = units_t if table == "units" else runs_t
    cond = [t.c[k] == v for k, v in where.items()]
    values = dict(claimed_at=old, heartbeat_at=None) if table == "units" else dict(started_at=old, heartbeat_at=old)
    with catalog.engine.begin() as con:
        con.execute(update(t).where(*cond).values(**values))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_processes_creating_the_same_new_store_at_once_all_succeed(tmp_path, new_catalog_url):
    """4 processes x 15 rounds: in each round all of them open the same brand-new store (its catalog and its
    identity) at the same moment."""
    rounds, workers = 15, 4
    urls = [new_catalog_url() for _ in range(rounds)]
    script = textwrap.dedent(f"""
        import json, os, sys, time
        from storage import Store
        urls, base, me = {urls!r}, {str(tmp_path)!r}, sys.argv[1]
        errors, ids = [], []
        for r, url in enumerate(urls):
            open(os.path.join(base, f"ready-{{r}}-{{me}}"), "w").close()
            while not os.path.exists(os.path.join(base, f"go-{{r}}")):
                time.sleep(0.0005)
            try:
                s = Store.open(os.path.join(base, f"store-{{r}}"), catalog_url=url)
                s.catalog.start_run("archive", {{"worker": me}})
                ids.append(s.store_id())
                s.close()
            except Exception as exc:
                errors.append(f"round {{r}}: {{type(exc).__name__}}: {{exc}}")
                ids.append(None)
        print(json.dumps([errors, ids]))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)], cwd=os.getcwd(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for n in range(workers)]
    try:
        for r in range(rounds):
            deadline = time.monotonic() + 120
            while len(list(tmp_path.glob(f"ready-{r}-*"))) < workers and time.monotonic() < deadline:
                time.sleep(0.002)
            (tmp_path / f"go-{r}").touch()
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    ids = []
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        errors, their_ids = json.loads(out)
        assert errors == []
        ids.append(their_ids)
    assert all(len(set(per_round)) == 1 for per_round in zip(*ids, strict=True))  # one identity per store
    for url in urls:
        c = Catalog(url)
        assert c.schema_version() == CATALOG_SCHEMA_VERSION
        assert len(c.runs()) == workers
        c.dispose()


def _v1_catalog(tmp_path, new_catalog_url) -> str:
    """A catalog as version 1 wrote it (tests/storage/fixtures/catalog_v1.sql), on SQLite or PostgreSQL (its
    tables reflected from the SQLite file and copied with their rows)."""
    path = tmp_path / "v1.sqlite"
    con = sqlite3.connect(path)
    con.executescript((FIXTURES / "catalog_v1.sql").read_text())
    con.close()
    if new_catalog_url.backend == "sqlite":
        return f"sqlite:///{path}"
    from sqlalchemy import MetaData, create_engine, insert, select

    url = new_catalog_url()
    source, target = create_engine(f"sqlite:///{path}"), create_engine(url)
    v1 = MetaData()
    v1.reflect(source)
    for table in v1.sorted_tables:
        for column in table.columns:
            column.type = column.type.as_generic()  # SQLite's DATETIME -> DateTime (TIMESTAMP on PostgreSQL)
    v1.create_all(target)
    with source.connect() as src, target.begin() as dst:
        for table in v1.sorted_tables:
            rows = [row._asdict() for row in src.execute(select(table))]
            if rows:
                dst.execute(insert(table), rows)
    source.dispose()
    target.dispose()
    return url


def test_a_v1_catalog_is_migrated_in_place_and_keeps_its_rows(tmp_path, new_catalog_url):
    url = _v1_catalog(tmp_path, new_catalog_url)
    c = Catalog(url)
    assert c.schema_version() == 2
    columns = {t: {col["name"] for col in inspect(c.engine).get_columns(t)} for t in ("units", "runs")}
    assert {"rows", "table_rows", "heartbeat_at"} <= columns["units"]
    assert {"host", "pid", "heartbeat_at"} <= columns["runs"]
    assert {"requests", "video_paths", "quarantine"} <= set(inspect(c.engine).get_table_names())
    a = "a" * 64
    assert c.unit("track", a, "track-1").state == "done" and c.unit("track", a, "track-1").rows is None
    assert c.failures()[0].error == "CUDA out of memory"
    assert [p["prompt_id"] for p in c.prompts()] == ["caption-short"]
    finished, killed = sorted(c.runs(lease_s=0), key=lambda r: r.status)
    assert finished.status == "ok" and finished.summary == {"videos_done": 1}
    assert killed.status == "running" and killed.effective_status == "crashed"  # no heartbeat: lease passed
    # the migrated catalog works like a new one
    c.mark_done("describe", a, "desc-1", rows=2)
    assert c.unit("describe", a, "desc-1").rows == 2
    c.dispose()
    Catalog(url).dispose()  # opening it again is a no-op


def test_a_v1_catalog_opened_read_only_is_not_touched(tmp_path, new_catalog_url):
    url = _v1_catalog(tmp_path, new_catalog_url)
    with pytest.raises(ReadOnlyStoreError, match="upgrading the catalog from schema version 1 to 2"):
        Catalog(url, read_only=True)
    assert Catalog(url).schema_version() == 2  # nothing was half-migrated


def test_claims_are_renewed_by_heartbeats_and_taken_over_when_they_stop(catalog):
    assert catalog.claim_unit("track", "v", "k", "w1")
    _age(catalog, "units", 300, unit_key="k")
    assert catalog.renew_claims("w1") == 1  # the holder is alive: its claim is fresh again
    assert not catalog.claim_unit("track", "v", "k", "w2")
    _age(catalog, "units", 300, unit_key="k")  # the holder stopped renewing
    assert catalog.claim_unit("track", "v", "k", "w2")  # default lease (120 s) passed
    rec = catalog.unit("track", "v", "k")
    assert rec.worker_id == "w2" and rec.attempts == 2
    assert catalog.renew_claims("w1") == 0  # the old holder holds nothing any more


def test_a_pid_1_worker_of_a_container_is_taken_over_after_the_lease(catalog):
    """`vm:1:...` names PID 1, which always exists: only the lease can tell it is gone."""
    assert catalog.claim_unit("track", "v", "k", "vm:1:dead-container")
    assert not catalog.claim_unit("track", "v", "k", "vm:77:new")
    _age(catalog, "units", 121, unit_key="k")
    assert catalog.claim_unit("track", "v", "k", "vm:77:new")


def test_renew_only_some_units_and_release_claims(catalog):
    for key in ("a", "b", "c"):
        assert catalog.claim_unit("track", "v", key, "w1")
    assert catalog.claim_unit("track", "v", "d", "w2")
    _age(catalog, "units", 300, worker_id="w1")
    assert catalog.renew_claims("w1", units=[("track", "v", "a")]) == 1
    held = {u.unit_key: u for u in catalog.held_claims()}
    assert set(held) == {"a", "b", "c", "d"} and held["a"].worker_id == "w1"
    assert not held["a"].is_stale() and held["b"].is_stale() and held["b"].age_s >= 299
    assert catalog.release_claims(stale_only=True) == 2  # b, c
    assert {u.unit_key for u in catalog.held_claims()} == {"a", "d"}
    assert catalog.release_claims(units=[("track", "v", "d")]) == 1
    assert catalog.release_claims(worker_id="w1") == 1
    assert catalog.held_claims() == []
    assert catalog.unit_state("track", "v", "a") == "pending"
    assert catalog.claim_unit("track", "v", "a", "w3")


def test_a_running_run_whose_process_is_gone_or_silent_is_crashed(catalog):
    host = socket.gethostname()
    alive = catalog.start_run("archive", {})
    dead = catalog.start_run("archive", {}, host=host, pid=_dead_pid())
    silent = catalog.start_run("archive", {}, host="another-host", pid=123)
    done = catalog.start_run("archive", {})
    catalog.finish_run(done, "ok", {})
    _age(catalog, "runs", 3600, id=silent)
    runs = {r.id: r for r in catalog.runs()}
    assert runs[alive].effective_status == "running" and runs[alive].host == host and runs[alive].pid == os.getpid()
    assert runs[dead].effective_status == "crashed" and runs[dead].status == "running"
    assert runs[silent].effective_status == "crashed" and runs[silent].heartbeat_age_s >= 3599
    assert runs[done].effective_status == "ok"
    catalog.heartbeat_run(silent)  # it shows a sign of life again
    assert catalog.run(silent).effective_status == "running"


def test_requests_video_paths_and_rows(catalog):
    catalog.record_request("run-a", "track", "v", "A")
    catalog.record_request("run-b", "track", "v", "B")
    catalog.record_request("run-c", "track", "v", "A")
    reqs = {r.unit_key: r for r in catalog.requests("track")}
    assert reqs["A"].run_id == "run-c" and reqs["A"].n_requests == 2 and reqs["A"].requested_at > reqs["B"].requested_at
    catalog.record_video_path("v", "/a/x.mp4", 10)
    catalog.record_video_path("v", "/b/copy-of-x.mp4", 10)
    catalog.record_video_path("v", "/a/x.mp4", 10)
    paths = catalog.video_paths("v")
    assert [p.uri for p in paths] == ["/a/x.mp4", "/b/copy-of-x.mp4"]
    assert paths[0].last_seen > paths[0].first_seen
    catalog.mark_done("track", "v", "A", rows={"objects": 3, "object_frames": 40})
    rec = catalog.unit("track", "v", "A")
    assert rec.rows == 3 and rec.table_rows == {"objects": 3, "object_frames": 40}
    assert catalog.requeue_unit("track", "v", "A", reason="file lost")
    rec = catalog.unit("track", "v", "A")
    assert (rec.state, rec.error, rec.rows) == ("pending", "file lost", None)


def test_a_read_only_catalog_reads_and_refuses_writes(tmp_path, catalog_url):
    store = Store.open(tmp_path / "s", catalog_url=catalog_url)
    store.catalog.start_run("archive", {})
    store.catalog.mark_done("ingest", "v", "probe")
    store.close()
    ro = Catalog(catalog_url, read_only=True)
    assert ro.stage_counts() == {"ingest": {"done": 1}} and len(ro.runs()) == 1
    for call in (lambda: ro.start_run("x", {}), lambda: ro.claim_unit("track", "v", "k", "w"),
                 lambda: ro.mark_done("track", "v", "k"), lambda: ro.record_request(None, "track", "v", "k"),
                 lambda: ro.release_claims()):
        with pytest.raises(ReadOnlyStoreError, match="needs write access"):
            call()
    ro.dispose()
