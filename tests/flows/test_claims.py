"""Claims: a unit left 'running' by a dead process of this host is taken over at once; a live worker's is not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from flows.stages.claims import claim, worker_is_dead
from storage import Store


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_running_unit_of_a_dead_worker_is_taken_over_but_a_live_one_is_not(tmp_path):
    catalog = Store.open(str(tmp_path / "s")).catalog
    host = socket.gethostname()
    dead = f"{host}:{_dead_pid()}:x"
    assert worker_is_dead(dead)
    assert catalog.claim_unit("track", "v1", "t-1", dead)
    assert claim(catalog, "track", "v1", "t-1", f"{host}:{os.getpid()}:me")
    assert catalog.unit("track", "v1", "t-1").worker_id.endswith(":me")

    live = f"{host}:{os.getppid()}:other"  # our parent process is alive
    assert not worker_is_dead(live)
    assert catalog.claim_unit("track", "v2", "t-1", live)
    assert not claim(catalog, "track", "v2", "t-1", f"{host}:{os.getpid()}:me")
    catalog.mark_done("track", "v2", "t-1")
    assert not claim(catalog, "track", "v2", "t-1", f"{host}:{os.getpid()}:me")
    assert not worker_is_dead("otherhost:1:x") and not worker_is_dead(None)


def _age_claim(catalog, stage, video_id, key, seconds):
    """Make a running claim look `seconds` old (claim and heartbeat), as a silent worker's would."""
    import datetime as dt

    from sqlalchemy import update

    from storage.catalog.tables import units_t

    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds)
    with catalog.engine.begin() as con:
        con.execute(update(units_t).where((units_t.c.stage == stage) & (units_t.c.video_id == video_id)
                                          & (units_t.c.unit_key == key)).values(claimed_at=past, heartbeat_at=past))


def test_a_restarted_pid_1_worker_takes_over_its_old_claims_at_once(tmp_path):
    """Containers: every worker is pid 1, so a rerun has the pid of the worker that held the claim."""
    catalog = Store.open(str(tmp_path / "s")).catalog
    host = socket.gethostname()
    old, new = f"{host}:{os.getpid()}:old-instance", f"{host}:{os.getpid()}:new-instance"
    assert catalog.claim_unit("track", "v1", "t-1", old)
    assert worker_is_dead(old, me=new) and not worker_is_dead(new, me=new)
    assert claim(catalog, "track", "v1", "t-1", new)  # at once, though the old claim is fresh
    assert catalog.unit("track", "v1", "t-1").worker_id == new


def test_a_silent_worker_on_another_host_loses_its_claim_after_the_lease_not_before(tmp_path):
    catalog = Store.open(str(tmp_path / "s")).catalog
    me = f"{socket.gethostname()}:{os.getpid()}:me"
    assert catalog.claim_unit("track", "v1", "t-1", "gpu-box-7:4242:a")
    _age_claim(catalog, "track", "v1", "t-1", 60)
    assert not claim(catalog, "track", "v1", "t-1", me, lease_s=120)  # heartbeat 1 min ago: alive
    _age_claim(catalog, "track", "v1", "t-1", 300)
    assert claim(catalog, "track", "v1", "t-1", me, lease_s=120)  # silent for 5 min: taken over
    assert catalog.unit("track", "v1", "t-1").attempts == 2


def test_the_run_heartbeat_keeps_a_workers_claims_alive(tmp_path):
    import time

    from flows.run_context import Heartbeat

    store = Store.open(str(tmp_path / "s"))
    worker = "gpu-box-7:4242:a"
    run_id = store.catalog.start_run("archive", {}, host="gpu-box-7", pid=4242)
    assert store.catalog.claim_unit("track", "v1", "t-1", worker)
    _age_claim(store.catalog, "track", "v1", "t-1", 300)
    with Heartbeat(store, run_id, worker, every_s=0.05):
        time.sleep(0.5)
    record = store.catalog.unit("track", "v1", "t-1")
    assert record.heartbeat_age_s is not None and record.heartbeat_age_s < 5
    assert not claim(store.catalog, "track", "v1", "t-1", f"{socket.gethostname()}:{os.getpid()}:me", lease_s=120)
    assert store.catalog.run(run_id).heartbeat_age_s < 5


def test_status_names_crashed_runs_and_held_claims(tmp_path):
    from flows.commands.status import status_text

    store = Store.open(str(tmp_path / "s"))
    store.catalog.start_run("archive", {}, host=socket.gethostname(), pid=_dead_pid())
    assert store.catalog.claim_unit("track", "v" * 64, "t-1", "gpu-box-7:4242:a", uri="/cams/a.mp4")
    text = status_text(store)
    assert "crashed (process gone" in text
    assert "claims held now (1)" in text and "/cams/a.mp4" in text and "by gpu-box-7:4242:a" in text
