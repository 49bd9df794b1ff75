import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import update

from storage import Catalog, SchemaVersionError, Store
from storage.catalog import CATALOG_SCHEMA_VERSION, schema_version_t, units_t


def test_claim_lifecycle(catalog):
    assert catalog.unit_state("track", "v", "k") is None
    assert catalog.claim_unit("track", "v", "k", "w1", uri="/x.mp4")
    assert catalog.unit_state("track", "v", "k") == "running"
    assert not catalog.claim_unit("track", "v", "k", "w2")  # held, lease not expired
    catalog.mark_done("track", "v", "k")
    assert catalog.unit_state("track", "v", "k") == "done"
    assert not catalog.claim_unit("track", "v", "k", "w2", force=True)  # done is never re-claimed
    assert catalog.unit("track", "v", "k").uri == "/x.mp4"


def test_failed_units_are_reclaimable_only_when_retryable_or_forced(catalog):
    catalog.claim_unit("describe", "v", "a", "w1")
    catalog.mark_failed("describe", "v", "a", "CUDA out of memory", retryable=True)
    catalog.claim_unit("describe", "v", "b", "w1")
    catalog.mark_failed("describe", "v", "b", "corrupt video", retryable=False)
    assert [u.error for u in catalog.failures()] == ["CUDA out of memory", "corrupt video"]
    assert catalog.claim_unit("describe", "v", "a", "w2")
    assert catalog.unit("describe", "v", "a").attempts == 2
    assert not catalog.claim_unit("describe", "v", "b", "w2")
    assert catalog.claim_unit("describe", "v", "b", "w2", force=True)
    assert catalog.stage_counts() == {"describe": {"running": 2}}


def test_expired_running_claim_can_be_taken_over(catalog):
    assert catalog.claim_unit("track", "v", "k", "dead-worker")
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=2)
    with catalog.engine.begin() as con:
        con.execute(update(units_t).values(claimed_at=old))
    assert not catalog.claim_unit("track", "v", "k", "w2", lease_s=3 * 3600)
    assert catalog.claim_unit("track", "v", "k", "w2", lease_s=3600)
    assert catalog.unit("track", "v", "k").worker_id == "w2"


def test_pending_units_and_counts(catalog):
    assert catalog.add_pending("ingest", "v1", "probe")
    assert not catalog.add_pending("ingest", "v1", "probe")
    catalog.add_pending("ingest", "v2", "probe")
    assert catalog.claim_unit("ingest", "v1", "probe", "w")
    catalog.mark_done("ingest", "v1", "probe")
    assert catalog.stage_counts() == {"ingest": {"done": 1, "pending": 1}}


def test_runs_and_prompts(catalog):
    run_id = catalog.start_run("archive", {"archive": "/videos", "sample_fps": 2})
    catalog.finish_run(run_id, "ok", {"videos": 3, "failed": 0})
    [run] = catalog.runs()
    assert (run.id, run.kind, run.status, run.params["sample_fps"], run.summary) == \
        (run_id, "archive", "ok", 2, {"videos": 3, "failed": 0})
    assert run.finished_at >= run.started_at
    catalog.upsert_prompt("p1", "Describe this object.", "caption")
    catalog.upsert_prompt("p1", "changed text is ignored", "caption")
    assert [(p["prompt_id"], p["text"]) for p in catalog.prompts()] == [("p1", "Describe this object.")]


def test_store_written_by_a_newer_version_is_refused(tmp_path, catalog_url):
    store = Store.open(tmp_path / "s", catalog_url=catalog_url)
    with store.catalog.engine.begin() as con:
        con.execute(update(schema_version_t).values(version=CATALOG_SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(SchemaVersionError) as info:
        Store.open(tmp_path / "s", catalog_url=catalog_url)
    msg = str(info.value)
    assert f"schema version {CATALOG_SCHEMA_VERSION + 1}" in msg and f"up to version {CATALOG_SCHEMA_VERSION}" in msg
    assert "upgrade" in msg


def test_two_processes_claim_each_unit_exactly_once(tmp_path, catalog_url):
    url = catalog_url
    Catalog(url).dispose()  # create the schema before the race
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import json, os, random, sys, time
        from storage import Catalog
        c = Catalog({url!r})
        open(os.path.join({str(tmp_path)!r}, "ready-" + sys.argv[1]), "w").close()
        while not os.path.exists({str(go)!r}):
            pass
        order = list(range(50))
        random.Random(int(sys.argv[1][-1])).shuffle(order)  # each walks every unit, in its own order
        won = []
        for i in order:  # a short pause stands for doing the work
            if c.claim_unit("track", "vid", f"unit-{{i}}", sys.argv[1]):
                won.append(i)
            time.sleep(0.002)
        print(json.dumps(won))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, f"worker-{n}"], cwd=os.getcwd(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(2)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    a, b = map(set, results)
    assert not a & b
    assert a | b == set(range(50))
    assert a and b  # both really took part in the race
    check = Catalog(url)
    assert check.stage_counts() == {"track": {"running": 50}}
    assert {u.worker_id for u in check.units()} <= {"worker-0", "worker-1"}
    check.dispose()
