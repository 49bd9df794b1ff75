"""The documented many-machine recipe (docs/deployment.md), run for real on loopback: a Prefect server, a
process work pool, the `pixelrefer-gpu` global concurrency limit, `prefect deploy --all` of prefect.yaml, two
`prefect worker start` processes standing for two machines (own cache folder, views folder and worker id),
a PostgreSQL catalog and a store on an S3-compatible server, an archive of 8 generated clips uploaded to
that server.

What a user relies on: every unit done exactly once, the same tables as one plain process on a local
store, never more describe batches at once than the limit, and a machine that dies mid-run loses nothing
(the other finishes the job, with the same tables).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

VOLATILE = {"probed_at", "tracked_at", "created_at", "run_id", "latency_ms"}
TABLES = ("videos", "objects", "object_frames", "descriptions")
BUCKET = "pixelrefer-deploy"
GPU_LIMIT = 1
DEPLOYMENT = "process-archive/nightly-archive"
REPO = Path(__file__).resolve().parents[2]


def _scenes():
    """8 small clips: the flow tests' two scenes, each in 4 variants (own background seed, so own content)."""
    from flows.demo_archive import TEST_SCENES

    return [dataclasses.replace(scene, name=f"cam{i}/{os.path.basename(scene.name)}", seed=scene.seed + 10 * i)
            for i in range(4) for scene in TEST_SCENES]


def _s3fs():
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


def _snapshot(root: str) -> dict[str, list[dict]]:
    """Every table's rows (volatile columns dropped), sorted, read straight from the Parquet files of a local
    folder or an s3:// store (no views, no catalog)."""
    if root.startswith("s3://"):
        fs, base = _s3fs(), root.removeprefix("s3://")
    else:
        import fsspec

        fs, base = fsspec.filesystem("file"), root
    out = {}
    for table in TABLES:
        files = sorted(fs.glob(f"{base}/{table}/video_id=*/*.parquet"))
        rows = []
        for path in files:
            t = pq.read_table(io.BytesIO(fs.cat_file(path)))
            rows += [{k: v for k, v in r.items() if k not in VOLATILE} for r in t.to_pylist()]
        out[table] = sorted(rows, key=repr)
    return out


def _file_counts(root: str) -> dict[str, int]:
    fs, base = _s3fs(), root.removeprefix("s3://")
    return {t: len(fs.glob(f"{base}/{t}/video_id=*/*.parquet")) for t in TABLES}


def _units(url: str) -> list[dict]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as con:
            return [dict(r._mapping) for r in con.execute(sa.text(
                "SELECT stage, video_id, unit_key, state, attempts, worker_id, rows FROM units"))]
    finally:
        engine.dispose()


class Deployment:
    """The recipe's state: servers, environment of every machine, the two worker "machines"."""

    def __init__(self, srv, pg, s3, prefect, base: Path):
        self.srv, self.pg, self.s3, self.prefect, self.base = srv, pg, s3, prefect, base
        # what every machine has in its environment: credentials and addresses, never on a command line
        self.env = {**prefect.env, **s3.env, **pg.env, "PIXELREFER_REPO": str(REPO),
                    "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1",
                    "PREFECT_LOGGING_LEVEL": "INFO"}
        self.workers: dict[str, object] = {}

    def cli(self, *args: str) -> str:
        return self.srv.prefect_cli(list(args), self.env)

    def machine_env(self, name: str) -> dict[str, str]:
        folder = self.base / name
        return {**self.env, "PIXELREFER_CACHE_DIR": str(folder / "video-cache"), "XDG_CACHE_HOME": str(folder / "xdg"),
                "PIXELREFER_WORKER_ID": f"{name}.example:worker", "HOME": str(folder)}

    def start_worker(self, name: str):
        (self.base / name).mkdir(exist_ok=True)
        worker = self.srv.PrefectWorker(name, "gpu", self.machine_env(name), limit=1, folder=self.base / name)
        self.workers[name] = worker.start()
        return worker

    def trigger(self) -> str:
        out = self.cli("deployment", "run", DEPLOYMENT)
        found = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
        assert found, out
        return found.group(1)

    def flow_run(self, run_id: str) -> dict:
        return self.srv.api(self.prefect.api_url, f"/flow_runs/{run_id}")

    def wait(self, run_ids: list[str], timeout_s: float = 420) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            runs = [self.flow_run(r) for r in run_ids]
            if all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs):
                return runs
            time.sleep(1)
        logs = "\n".join(f"--- {n}\n{w.log.read_text(errors='replace')[-3000:]}" for n, w in self.workers.items())
        raise AssertionError(f"flow runs not finished in {timeout_s} s: {[self.flow_run(r)['state_type'] for r in run_ids]}"
                             f"\n{logs}")

    def gpu_intervals(self, since: dt.datetime, flow_runs: list[str]) -> list[tuple[dt.datetime, dt.datetime]]:
        """(acquired, released) of every slot of the `pixelrefer-gpu` limit taken by `flow_runs` since `since`,
        from the events the Prefect server recorded (each release event `follows` its acquisition)."""
        now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        body = {"filter": {"occurred": {"since": since.isoformat(), "until": now.isoformat()},
                           "event": {"prefix": ["prefect.concurrency-limit."]}}, "limit": 50}
        page = self.srv.api(self.prefect.api_url, "/events/filter", body)
        events = list(page["events"])
        while page.get("next_page"):
            page = self.srv.api(self.prefect.api_url, page["next_page"].split("/api", 1)[1], method="GET")
            events += page["events"]
        ours = {f"prefect.flow-run.{r}" for r in flow_runs}
        events = [e for e in events if e["resource"].get("prefect.resource.name") == "pixelrefer-gpu"
                  and ours & {r.get("prefect.resource.id") for r in e.get("related", [])}]
        acquired = {e["id"]: e for e in events if e["event"].endswith(".acquired")}
        released = [e for e in events if e["event"].endswith(".released")]
        assert len(released) == len(acquired), (len(acquired), len(released))
        return sorted((dt.datetime.fromisoformat(acquired[e["follows"]]["occurred"]),
                       dt.datetime.fromisoformat(e["occurred"])) for e in released)


def _max_concurrent(intervals, slack_s: float) -> int:
    """Most intervals open at one moment; each end is moved `slack_s` earlier (the release event is sent just
    after the server freed the slot, the next acquisition's just after it granted it)."""
    edges = sorted([(a, 1) for a, _ in intervals] + [(r - dt.timedelta(seconds=slack_s), -1) for _, r in intervals],
                   key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


@pytest.fixture(scope="module")
def deployment(deploy_servers, srv, tmp_path_factory):
    """The recipe up to the workers: archive uploaded, pool, limit, deployments registered, 2 workers up."""
    from flows.demo_archive import make_archive
    from flows.runtime import tiny_model_dir

    pg, s3, prefect = deploy_servers
    base = tmp_path_factory.mktemp("deploy")
    d = Deployment(srv, pg, s3, prefect, base)
    s3.create_bucket(BUCKET)
    archive = base / "archive"
    make_archive(str(archive), _scenes(), corrupt=False)
    env = pytest.MonkeyPatch()  # this process reads the bucket and the catalog (PGPASSWORD) too, until the end
    for name, value in {**s3.env, **pg.env}.items():
        env.setenv(name, value)
    _s3fs().put(str(archive) + "/", f"{BUCKET}/archive/", recursive=True)
    d.model = tiny_model_dir(str(base / "models"))  # the checkpoint every machine has at the same path
    d.cli("work-pool", "create", "gpu", "--type", "process")
    d.cli("gcl", "create", "pixelrefer-gpu", "--limit", str(GPU_LIMIT))
    d.start_worker("machine-a")
    d.start_worker("machine-b")
    yield d
    for worker in d.workers.values():
        worker.stop()
    env.undo()  # the session's own servers (tests/conftest.py s3_server, pg_server) are the ones after this


def _settings(d: Deployment, store: str, catalog_url: str | None) -> dict:
    return dict(store=store, catalog_url=catalog_url, archive=f"s3://{BUCKET}/archive/", model=d.model,
                profile="tiny", segmenter="motion", sample_fps=6.0, frames_per_object=2, max_new_tokens=4,
                batch_size=2, device="cpu", claim_lease_s=10.0)


def _deploy(d: Deployment, settings: dict) -> None:
    """`prefect deploy --all` of the repo's prefect.yaml, its nightly deployment's parameters set to `settings`
    (and no schedule: the test triggers it)."""
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for dep in spec["deployments"]:
        if dep["name"] == "nightly-archive":
            dep["parameters"] = {"settings": settings}
            dep.pop("schedules", None)
    path = d.base / "prefect.yaml"
    path.write_text(yaml.safe_dump(spec))
    d.cli("deploy", "--all", "--prefect-file", str(path), "--no-prompt")


def _reference(d: Deployment, settings: dict) -> dict:
    """The same settings run by one plain process on a local store (SQLite catalog in it)."""
    store = d.base / "reference-store"
    code = ("import json, sys; from flows.archive import process_archive; from flows.settings import RunSettings; "
            "process_archive(RunSettings(**json.loads(sys.argv[1])))")
    local = {**settings, "store": str(store), "catalog_url": None}
    import json

    env = {**os.environ, **d.machine_env("reference")}
    (d.base / "reference").mkdir(exist_ok=True)
    res = subprocess.run([sys.executable, "-c", code, json.dumps(local)], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    return _snapshot(str(store))


def test_two_workers_do_every_unit_once_with_the_tables_of_one_process_and_a_dead_one_loses_nothing(deployment):
    d = deployment
    # -- run 1: two flow runs, one per machine, share the archive's units by claim
    url1 = d.pg.create_database("deploy_run1")
    store1 = f"s3://{BUCKET}/store-1"
    settings = _settings(d, store1, url1)
    _deploy(d, settings)
    reference = _reference(d, settings)
    assert all(reference[t] for t in TABLES), {t: len(v) for t, v in reference.items()}
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    run_ids = [d.trigger(), d.trigger()]
    runs = d.wait(run_ids)
    assert [r["state_type"] for r in runs] == ["COMPLETED", "COMPLETED"], [r["state"] for r in runs]
    assert {r["work_queue_name"] for r in runs} and all(r["work_pool_name"] == "gpu" for r in runs)

    units = _units(url1)
    assert units and all(u["state"] == "done" for u in units), [u for u in units if u["state"] != "done"]
    assert all(u["attempts"] == 1 for u in units), [u for u in units if u["attempts"] != 1]  # exactly once
    counts = _file_counts(store1)
    assert counts["videos"] == sum(u["stage"] == "ingest" for u in units) == len(_scenes())
    assert counts["descriptions"] == sum(u["stage"] == "describe" for u in units)
    assert _snapshot(store1) == reference

    intervals = d.gpu_intervals(started, run_ids)
    print("gpu slots (s after the first):", [(round((a - intervals[0][0]).total_seconds(), 2),
                                              round((r - intervals[0][0]).total_seconds(), 2)) for a, r in intervals])
    print("units per worker:", {w: sum(u["worker_id"] == w for u in units) for w in {u["worker_id"] for u in units}})
    assert len(intervals) >= 2  # the describe batches of both flow runs went through the limit
    assert _max_concurrent(intervals, slack_s=0.05) <= GPU_LIMIT

    # -- run 2, on a new store: the machine describing first dies (SIGKILL) with its describe claims held;
    # the other takes them over once their lease lapsed
    url2 = d.pg.create_database("deploy_run2")
    store2 = f"s3://{BUCKET}/store-2"
    _deploy(d, _settings(d, store2, url2))
    first = [d.trigger(), d.trigger()]
    deadline = time.monotonic() + 300
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "no describe unit of run 2 was claimed in 300 s"
        running = [u for u in (_units(url2) if _has_units(url2) else [])
                   if u["stage"] == "describe" and u["state"] == "running"]
        if running:
            victim = running[0]["worker_id"].split(".example", 1)[0]
        else:
            time.sleep(0.1)
    d.workers[victim].kill()
    killed_at = time.monotonic()
    held = [u for u in _units(url2) if u["state"] == "running" and u["worker_id"].startswith(victim)]
    assert held, "the machine was killed after its describe batch: nothing left to take over"
    # the dead machine also held the GPU slot: Prefect frees it when its lease (300 s) expires; the operator's
    # step of docs/deployment.md frees it at once (no other machine holds a slot here)
    d.cli("gcl", "update", "pixelrefer-gpu", "--active-slots", "0")
    # the survivor finishes its flow run (the victim's stays "running" in Prefect: nobody is left to say)...
    deadline = time.monotonic() + 300
    while not any(d.flow_run(r)["state_type"] == "COMPLETED" for r in first):
        assert time.monotonic() < deadline, [d.flow_run(r)["state_type"] for r in first]
        time.sleep(1)
    # ...then the next run of the deployment, once the victim's claims lapsed (lease 10 s), redoes what it held
    time.sleep(max(0.0, 12 - (time.monotonic() - killed_at)))
    last = d.trigger()
    (final,) = d.wait([last])
    assert final["state_type"] == "COMPLETED", final["state"]
    units = _units(url2)
    assert all(u["state"] == "done" for u in units), [u for u in units if u["state"] != "done"]
    taken_over = {(u["stage"], u["video_id"], u["unit_key"]) for u in held}
    assert all(not u["worker_id"].startswith(victim) for u in units
               if (u["stage"], u["video_id"], u["unit_key"]) in taken_over)
    print(f"killed {victim} holding {len(held)} claim(s); the other machine redid them")
    assert _snapshot(store2) == reference


def _has_units(url: str) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).has_table("units")
    finally:
        engine.dispose()
