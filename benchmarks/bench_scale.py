"""Scale benchmark: what does orchestration cost per unit, and does adding a worker add throughput? (issue 14)

The deployment of docs/deployment.md on loopback (tests/deploy/servers.py: Debian's PostgreSQL catalog,
moto's S3 store, `prefect server start`, process workers), with units that do no model work: each unit is
the real sequence of flows.stages.units.run_unit (prior status, claim, one Parquet file written to S3 with
the `descriptions` schema, mark done) while the run heartbeats its claims (flows.run_context.Heartbeat).
So what is measured is exactly the overhead a real unit pays on top of its compute (seconds on a GPU):

- plain: one process, no Prefect, the units in a loop;
- prefect, N workers (1, 2, 4): N flow runs of a deployment, each on its own `prefect worker start` process,
  sharing the units by claim, each unit a Prefect task run.

Figures: units/s (from the first claim to the last mark-done, from the catalog's timestamps; the N flow
runs start their units together, once all N have started) and ms per unit; Prefect's cost per unit =
prefect(1 worker) - plain. Flow-run start (a new Python process per flow run) is printed apart: it is paid
once per flow run, not per unit. On a machine with fewer cores than workers + servers the N-worker figures
measure CPU contention (moto and the Prefect server are Python processes on the same cores), not Prefect.

    .venv/bin/python benchmarks/bench_scale.py                 # 200 units; workers 1, 2, 4
    .venv/bin/python benchmarks/bench_scale.py --units 60 --workers 1 2    # quick

Needs PostgreSQL's server binaries (apt-get install postgresql) and the test extra (moto[server], s3fs,
psycopg).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script or as a flow entrypoint
    sys.path.insert(0, str(REPO))

BUCKET = "pixelrefer-bench"
VIDEO_ID = "f" * 64


def _servers():
    spec = importlib.util.spec_from_file_location("pixelrefer_test_servers", REPO / "tests" / "deploy" / "servers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _unit_table(key: str):
    from storage import table_from_records

    now = dt.datetime.now(dt.UTC)
    return table_from_records("descriptions", [dict(
        video_id=VIDEO_ID, track_key="t" * 16, object_ids=[1], describe_key=key, prompt_id="p", prompt="Describe.",
        task="caption", answer="A red box.", model_id="bench", frames_used=[0, 1], n_tokens=4, latency_ms=0.0,
        run_id="bench", created_at=now)])


def do_units(store, keys: list[str], worker_id: str, submit=None) -> int:
    """Every unit of `keys` not done by someone else, through run_unit; returns how many this call did."""
    from flows.stages.outcomes import Status
    from flows.stages.units import UnitRef, run_unit

    def one(key: str) -> bool:
        ref = UnitRef("describe", VIDEO_ID, key)

        def work() -> int:
            store.write_unit("descriptions", VIDEO_ID, key, _unit_table(key))
            return 1

        return run_unit(store, ref, worker_id, work, lease_s=60).status == Status.DONE

    return sum(bool(submit(one, key) if submit else one(key)) for key in keys)


@task(name="bench-unit", cache_policy=NO_CACHE, persist_result=False)
def unit_task(fn, key: str) -> bool:
    return fn(key)


@flow(name="bench-units", persist_result=False)
def bench_units(store_url: str, catalog_url: str, n_units: int, expect: int = 1) -> int:
    """One "machine": the units of the benchmark, each as a Prefect task run, sharing them by claim. It starts
    its units once `expect` flow runs have started (so the figures are the steady state of N workers, not
    the staggered start of their processes)."""
    from flows.run_context import Heartbeat
    from flows.settings import default_worker_id
    from storage import Store

    store = Store.open(store_url, catalog_url=catalog_url)
    worker_id = default_worker_id()
    run_id = store.catalog.start_run("bench", {"units": n_units})
    deadline = time.monotonic() + 300
    while len(store.catalog.runs(kind="bench")) < expect and time.monotonic() < deadline:
        time.sleep(0.05)
    with Heartbeat(store, run_id, worker_id, every_s=15):
        done = do_units(store, [f"u{i:05d}" for i in range(n_units)], worker_id, submit=lambda fn, k: unit_task(fn, k))
    store.catalog.finish_run(run_id, "ok", {"done": done})
    store.close()
    return done


def _span(catalog_url: str) -> tuple[float, int, int]:
    """(seconds from the first claim to the last mark-done, units done, distinct workers) from the catalog."""
    import sqlalchemy as sa

    engine = sa.create_engine(catalog_url)
    with engine.connect() as con:
        lo, hi, n, w = con.execute(sa.text("SELECT min(claimed_at), max(updated_at), count(*), count(DISTINCT worker_id)"
                                           " FROM units WHERE state = 'done'")).one()
    engine.dispose()
    return (hi - lo).total_seconds(), int(n), int(w)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    srv = _servers()
    if srv.find_pg_bin() is None:
        print("bench_scale: PostgreSQL server binaries not found (apt-get install postgresql)", file=sys.stderr)
        return 1
    pg, s3, prefect = srv.PostgresServer(srv.find_pg_bin()), srv.MotoServer(), srv.PrefectServer()
    workers = []
    base = Path(tempfile.mkdtemp(prefix="pixelrefer-bench-scale-"))
    try:
        pg.start()
        s3.start()
        prefect.start()
        s3.create_bucket(BUCKET)
        os.environ.update({**s3.env, **pg.env})
        env = {**prefect.env, **s3.env, **pg.env, "PREFECT_WORKER_QUERY_SECONDS": "1",
               "PREFECT_WORKER_PREFETCH_SECONDS": "1", "PYTHONPATH": str(REPO)}
        from storage import Store

        # plain: one process, no Prefect
        url = pg.create_database("bench_plain")
        store = Store.open(f"s3://{BUCKET}/plain", catalog_url=url)
        t0 = time.perf_counter()
        do_units(store, [f"u{i:05d}" for i in range(args.units)], "plain:1")
        plain_s = time.perf_counter() - t0
        store.close()
        span, n, _ = _span(url)
        plain_ms = 1000 * plain_s / n
        print(f"plain process      : {n} units in {plain_s:6.2f} s = {n / plain_s:7.1f} units/s, {plain_ms:6.1f} ms/unit")

        srv.prefect_cli(["work-pool", "create", "bench", "--type", "process"], env)
        spec = (f"from benchmarks.bench_scale import bench_units; bench_units.from_source(source={str(REPO)!r}, "
                "entrypoint='benchmarks/bench_scale.py:bench_units').deploy(name='bench', work_pool_name='bench')")
        import subprocess

        subprocess.run([sys.executable, "-c", spec], env={**os.environ, **env}, cwd=REPO, check=True,
                       capture_output=True)
        for i in range(max(args.workers)):
            folder = base / f"w{i}"
            folder.mkdir()
            workers.append(srv.PrefectWorker(f"bench-{i}", "bench", env, folder=folder).start())
        one_ms = None
        for n_workers in args.workers:
            url = pg.create_database(f"bench_w{n_workers}")
            params = (f'{{"store_url": "s3://{BUCKET}/w{n_workers}", "catalog_url": "{url}", "n_units": {args.units}, '
                      f'"expect": {n_workers}}}')
            t0 = time.perf_counter()
            ids = []
            for _ in range(n_workers):
                out = srv.prefect_cli(["deployment", "run", "bench-units/bench", "--params", params], env)
                ids.append(out.split("UUID:")[1].split()[0])
            while True:
                try:
                    runs = [srv.api(prefect.api_url, f"/flow_runs/{r}") for r in ids]
                except OSError:  # a busy server (SQLite, two cores) answers late: ask again
                    time.sleep(1)
                    continue
                if all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED") for r in runs):
                    break
                time.sleep(0.5)
            wall = time.perf_counter() - t0
            assert all(r["state_type"] == "COMPLETED" for r in runs), [r["state"] for r in runs]
            span, n, w = _span(url)
            ms = 1000 * span / n
            one_ms = ms if n_workers == 1 else one_ms
            print(f"prefect, {n_workers} worker(s): {n} units in {span:6.2f} s = {n / span:7.1f} units/s, "
                  f"{ms:6.1f} ms/unit ({w} worker(s) did units; trigger to all flow runs done {wall:.1f} s, "
                  f"i.e. {wall - span:.1f} s of flow-run start)")
        if one_ms is not None:
            print(f"Prefect's cost per unit (1 worker - plain): {one_ms - plain_ms:.1f} ms")
    finally:
        for worker in workers:
            worker.stop()
        for server in (prefect, s3, pg):
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
