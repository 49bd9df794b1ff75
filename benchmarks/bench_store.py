"""Store benchmark: do queries stay fast as the archive grows? (issue 16)

Builds a synthetic store of N videos through the public storage API (Store.write_unit with column-wise
Arrow tables; 20 objects per video, --frames sampled frames per object), then reports, each as the median
of --repeat runs and as a ratio to the same SQL on raw `read_parquet` in the same run:

- refresh of the views file: full build, incremental after a batch of 10 new videos, no-op;
- every example query of sql/ (through the views file vs. the same SQL on raw read_parquet views);
- one video's frames in a time window (macro video_frames vs. a glob of that video's folder);
- one object's timeline (macro object_timeline vs. the same on its folder);
- objects per colour (latest tracking);
- `pixelrefer query "SELECT 1"`: process wall time and peak RSS;
- a 1M-row result streamed to CSV by `pixelrefer query`: wall time and peak RSS.

and a compression comparison for object_frames (zstd vs snappy: bytes, write and scan time) on realistic
masks (per-column boundaries that deform from frame to frame, encoded by pycocotools).

    .venv/bin/python benchmarks/bench_store.py                  # N = 100 and 1,000
    .venv/bin/python benchmarks/bench_store.py --sizes 100 --frames 100 --repeat 3   # quick
    .venv/bin/python benchmarks/bench_store.py --large          # adds N = 10,000 (use --frames 50 or so)

Query results are fetched as Arrow tables (the time is DuckDB's, not Python's row conversion).
Goals (printed PASS / FAIL): one-video lookups flat from the smallest to the largest N (and ratio <= 1.5);
every example query < 0.3 s in-process at 1,000 videos; CLI start-up < 0.5 s; a 1M-row CSV stream < 500 MB.
Stores are built under --workdir (default: a temporary folder, removed at the end unless --keep).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pycocotools import mask as mask_utils

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage import Store  # noqa: E402
from storage.query import run_query  # noqa: E402
from storage.schemas import SCHEMAS  # noqa: E402

OBJECTS_PER_VIDEO = 20
H, W = 360, 640
COLORS = ["red", "blue", "green", "white", "black", "gray", "yellow", "orange"]
TRACK_KEY = "trk-1"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


# -- synthetic masks ---------------------------------------------------------------------------------------
def realistic_rles(rng: np.random.Generator, n_frames: int, ncols: int = 100) -> list[str]:
    """COCO RLE strings of one object over n_frames: one run per column over `ncols` columns, a boundary
    that deforms by a pixel or two from frame to frame and a position that drifts (like a tracked mask)."""
    base_top = 100 + rng.integers(-3, 4, size=ncols).cumsum() // 3
    base_len = 60 + rng.integers(-3, 4, size=ncols).cumsum() // 3
    drift = rng.integers(-1, 2, size=(n_frames, 2)).cumsum(axis=0)
    wobble_t = rng.integers(-1, 2, size=(n_frames, ncols)).cumsum(axis=0) // 4
    wobble_l = rng.integers(-1, 2, size=(n_frames, ncols)).cumsum(axis=0) // 4
    tops = (base_top[None, :] + wobble_t + drift[:, :1]).clip(0, H - 100)
    lens = (base_len[None, :] + wobble_l).clip(5, 95)
    x0 = (200 + drift[:, 1]).clip(0, W - ncols)
    counts = np.empty((n_frames, 2 * ncols + 1), dtype=np.int64)
    counts[:, 0] = x0 * H + tops[:, 0]
    counts[:, 2:-1:2] = (H - (tops[:, :-1] + lens[:, :-1])) + tops[:, 1:]
    counts[:, 1::2] = lens
    counts[:, -1] = H * W - counts[:, :-1].sum(axis=1)
    encoded = mask_utils.frPyObjects([{"counts": c, "size": [H, W]} for c in counts.tolist()], H, W)
    return [e["counts"].decode("ascii") for e in encoded]


_ALPHABET = np.frombuffer(bytes(range(48, 112)), dtype="S1")


def cheap_rles(rng: np.random.Generator, n_rows: int, pool: list[str]) -> np.ndarray:
    """Unique mask strings at the cost of a string concatenation: a per-row 5-character prefix in the RLE
    alphabet + the body of a realistic RLE from `pool` (used for the big stores; the compression
    measurement uses `realistic_rles`)."""
    digits = rng.integers(0, 64, size=(n_rows, 5))
    prefix = _ALPHABET[digits].view("S5").ravel().astype(str)
    bodies = np.array(pool, dtype=object)[rng.integers(0, len(pool), size=n_rows)]
    return np.char.add(prefix, bodies.astype(str))


# -- building a store through the public API ---------------------------------------------------------------
def video_tables(i: int, frames: int, rng: np.random.Generator, pool: list[str]) -> tuple[str, dict[str, pa.Table]]:
    vid = f"{i:064x}"
    n = OBJECTS_PER_VIDEO
    fps = 10.0
    videos = pa.table({"video_id": [vid], "uri": [f"/archive/cam{i % 50}/clip{i:06d}.mp4"], "size_bytes": [10_000_000],
                       "fps": [fps], "num_frames": [frames * 3], "duration_s": [frames * 3 / fps], "width": [W],
                       "height": [H], "probed_at": pa.array([T0], SCHEMAS["videos"].field("probed_at").type)})
    first = rng.integers(0, frames, size=n)
    oid = np.arange(1, n + 1)
    objects = pa.table({
        "video_id": [vid] * n, "track_key": [TRACK_KEY] * n, "object_id": oid, "first_frame": first * 3,
        "last_frame": (first + frames) * 3, "t_start": first * 3 / fps, "t_end": (first + frames) * 3 / fps,
        "frames_present": np.full(n, frames), "max_area": rng.integers(500, 9000, size=n),
        "mean_area_frac": rng.random(n) / 10, "mean_score": pa.array(rng.random(n), pa.float32()),
        "discovered_by": ["auto"] * n, "color": [COLORS[j] for j in rng.integers(0, len(COLORS), size=n)],
        "mean_speed_px_s": rng.random(n) * 40, "direction_deg": rng.random(n) * 360,
        "tracked_at": pa.array([T0] * n, SCHEMAS["objects"].field("tracked_at").type),
    })
    rows = n * frames
    obj = np.repeat(oid, frames)
    frame_idx = (np.repeat(first, frames) + np.tile(np.arange(frames), n)) * 3
    x0 = rng.random(rows).astype(np.float32) * (W - 120)
    y0 = rng.random(rows).astype(np.float32) * (H - 100)
    object_frames = pa.table({
        "video_id": pa.array([vid] * rows), "track_key": pa.array([TRACK_KEY] * rows), "object_id": obj,
        "frame_idx": frame_idx, "t": frame_idx / fps, "x0": x0, "y0": y0, "x1": x0 + 100, "y1": y0 + 80,
        "area": rng.integers(500, 9000, size=rows), "score": pa.array(rng.random(rows), pa.float32()),
        "mask_rle": pa.array(cheap_rles(rng, rows, pool)), "mask_h": np.full(rows, H), "mask_w": np.full(rows, W),
    })
    descriptions = pa.table({
        "video_id": [vid] * n, "track_key": [TRACK_KEY] * n, "object_ids": [[int(o)] for o in oid],
        "describe_key": ["desc-1"] * n, "prompt_id": ["caption-short"] * n, "prompt": ["Describe this object."] * n,
        "task": ["caption"] * n,
        "answer": [f"a {COLORS[j]} {('car', 'person', 'bus', 'dog')[j % 4]} moving" for j in rng.integers(0, 8, size=n)],
        "model_id": ["bench@0"] * n, "frames_used": [[1, 2, 3, 4]] * n, "n_tokens": np.full(n, 12),
        "latency_ms": rng.random(n) * 100, "run_id": ["bench"] * n,
        "created_at": pa.array([T0] * n, SCHEMAS["descriptions"].field("created_at").type),
    })
    return vid, {"videos": videos, "objects": objects, "object_frames": object_frames, "descriptions": descriptions}


UNIT_KEYS = {"videos": "probe", "objects": TRACK_KEY, "object_frames": TRACK_KEY, "descriptions": "desc-1"}


_POOL: list[str] = []


def rle_pool() -> list[str]:
    """20,000 realistic mask strings (250 objects x 80 frames), made once per benchmark run."""
    if not _POOL:
        rng = np.random.default_rng(3)
        _POOL.extend(s for _ in range(250) for s in realistic_rles(rng, 80))
    return _POOL


def add_videos(store: Store, start: int, count: int, frames: int, seed: int) -> float:
    """Write `count` videos (every table) through Store.write_unit; returns seconds."""
    rng = np.random.default_rng(seed)
    pool = rle_pool()
    started = time.perf_counter()
    for i in range(start, start + count):
        vid, tables = video_tables(i, frames, rng, pool)
        for name in ("videos", "object_frames", "objects", "descriptions"):
            store.write_unit(name, vid, UNIT_KEYS[name], tables[name])
    return time.perf_counter() - started


# -- raw read_parquet reference ----------------------------------------------------------------------------
def raw_connection(root: str) -> duckdb.DuckDBPyConnection:
    """The same view names straight on read_parquet of the Parquet files (the reference of the ratios)."""
    con = duckdb.connect()
    for table in SCHEMAS:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{root}/{table}/video_id=*/*.parquet', "
                    "hive_partitioning = true, hive_types = {'video_id': 'VARCHAR'})")
    con.execute("""CREATE VIEW latest_tracks AS SELECT video_id, track_key, max(tracked_at) AS tracked_at,
                   count(*) AS n_objects FROM objects GROUP BY video_id, track_key
                   QUALIFY row_number() OVER (PARTITION BY video_id ORDER BY max(tracked_at) DESC, track_key DESC) = 1""")
    con.execute("CREATE VIEW latest_objects AS SELECT o.* FROM objects o JOIN latest_tracks USING (video_id, track_key)")
    con.execute("CREATE VIEW latest_object_frames AS SELECT f.* FROM object_frames f JOIN latest_tracks USING (video_id, track_key)")
    con.execute("""CREATE VIEW latest_descriptions AS SELECT * FROM descriptions QUALIFY row_number() OVER (
                   PARTITION BY video_id, track_key, object_ids, prompt_id, task ORDER BY created_at DESC, describe_key DESC) = 1""")
    con.execute("""CREATE VIEW object_captions AS WITH captions AS (
                   SELECT video_id, track_key, object_ids[1] AS object_id, answer AS caption, prompt AS caption_prompt,
                   model_id AS caption_model_id, created_at AS captioned_at FROM latest_descriptions
                   WHERE task = 'caption' AND len(object_ids) = 1)
                   SELECT o.*, c.caption, c.caption_prompt, c.caption_model_id, c.captioned_at FROM latest_objects o
                   LEFT JOIN captions c USING (video_id, track_key, object_id)""")
    con.execute(f"CREATE MACRO video_frames(vid) AS TABLE SELECT * FROM read_parquet('{root}/object_frames/video_id=' "
                "|| vid || '/*.parquet')")
    con.execute("""CREATE MACRO object_timeline(vid, oid) AS TABLE SELECT f.* FROM video_frames(vid) f
                   JOIN latest_tracks l USING (video_id, track_key) WHERE f.object_id = oid ORDER BY f.frame_idx""")
    return con


def timed_pair(fa, fb, repeat: int, budget_s: float = 1.0) -> tuple[float, float]:
    """Medians of `fa` and `fb`, run alternately (so that load on a shared machine hits both alike), at
    least `repeat` times each and, for fast queries, until `budget_s` has been spent."""
    fa(), fb()
    ta: list[float] = []
    tb: list[float] = []
    spent = 0.0
    while len(ta) < repeat or (spent < budget_s and len(ta) < 200):
        for fn, times in ((fa, ta), (fb, tb)):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
            spent += times[-1]
    return statistics.median(ta), statistics.median(tb)


def timed(fn, repeat: int) -> float:
    fn()  # warm (OS cache, DuckDB instance)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


_MEASURE = """
import resource, subprocess, sys, time
started = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - started
print(rc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def child(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one process, measured by a small parent (so that the RSS is the
    child's own, not this big process's image copied at fork). Bytecode is cached (in a folder of its own,
    as an installed package has it) even where PYTHONDONTWRITEBYTECODE is set: without a cache, Python
    compiles DuckDB's Python layer at every start (~0.25 s here)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "bench-store-pycache")
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], cwd=REPO, capture_output=True, text=True, env=env)
    rc, wall, rss_kb = proc.stdout.split()
    if int(rc) != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr}")
    return float(wall), int(rss_kb) / 1024


def example_queries() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted((REPO / "sql").glob("*.sql"))}


# -- one size ---------------------------------------------------------------------------------------------
def bench_size(workdir: Path, n: int, frames: int, repeat: int) -> dict[str, tuple[float, float | None]]:
    root = str(workdir / f"store-{n}")
    out: dict[str, tuple[float, float | None]] = {}
    store = Store.open(root)
    build = add_videos(store, 0, n, frames, seed=n)
    files = sum(len(store.list_units(t)) for t in SCHEMAS)
    size = sum(f.stat().st_size for f in Path(root).rglob("*.parquet"))
    print(f"\n== N = {n} videos: {n * OBJECTS_PER_VIDEO * frames:,} object_frames rows, {files:,} files, "
          f"{size / 2**30:.2f} GiB; built through Store.write_unit in {build:.1f} s")
    started = time.perf_counter()
    report = store.refresh_views()
    out["refresh: full build"] = (time.perf_counter() - started, None)
    assert not report.incremental
    add_videos(store, n, 10, frames, seed=n + 1)
    started = time.perf_counter()
    report = store.refresh_views()
    out["refresh: +10 videos (incremental)"] = (time.perf_counter() - started, None)
    assert report.incremental and report.added == 40, report
    out["refresh: nothing changed"] = (timed(store.refresh_views, repeat), None)
    store.close()

    db = os.path.join(root, "views.duckdb")
    raw = raw_connection(root)
    con = Store.open(root, read_only=True).connect()

    def run_all(c: duckdb.DuckDBPyConnection, sql: str) -> None:
        """Every statement; the result of the last fetched as Arrow (what a program would do)."""
        *first, last = c.extract_statements(sql)
        for statement in first:
            c.execute(statement.query)
        c.sql(last.query).to_arrow_table()

    def both(name: str, sql: str) -> None:
        def ours() -> None:
            run_all(con, sql)

        def theirs() -> None:
            run_all(raw, sql)

        a, b = timed_pair(ours, theirs, repeat)
        out[name] = (a, a / b if b else None)

    for name, sql in example_queries().items():
        both(f"example {name}", sql)
    vid = f"{n // 2:064x}"
    for name, sql in lookup_sql(n).items():
        both(name, sql)
    both("objects per colour", "SELECT color, count(*) FROM latest_objects GROUP BY color ORDER BY color")
    both("one video's frames through the object_frames view",
         f"SELECT count(*) FROM object_frames WHERE video_id = '{vid}'")
    con.close()
    raw.close()

    cli = [sys.executable, "-m", "flows", "query", "--store", root]
    runs = [child([*cli, "SELECT 1"]) for _ in range(repeat + 1)][1:]
    bare = [child([sys.executable, "-c", f"import duckdb; duckdb.connect({db!r}, read_only=True).sql('SELECT 1')"])
            for _ in range(repeat + 1)][1:]
    out["CLI `query SELECT 1`: wall"] = (statistics.median(r[0] for r in runs),
                                         statistics.median(r[0] for r in runs) / statistics.median(b[0] for b in bare))
    out["CLI `query SELECT 1`: peak RSS MB"] = (max(r[1] for r in runs), None)
    wall, rss = child([*cli, "--format", "csv", "SELECT * FROM object_frames LIMIT 1000000"])
    out["CLI 1M rows to CSV: wall"] = (wall, None)
    out["CLI 1M rows to CSV: peak RSS MB"] = (rss, None)
    assert run_query(db, "SELECT count(*) FROM videos")[1][0][0] == n + 10
    for name, (value, ratio) in out.items():
        unit = "" if "MB" in name else " s"
        ref = "a bare `import duckdb` + connect" if name.startswith("CLI") else "raw read_parquet"
        print(f"  {name:<52} {value:9.4f}{unit}" + (f"   x{ratio:5.2f} of {ref}" if ratio else ""))
    return out


# -- compression ------------------------------------------------------------------------------------------
def bench_compression(workdir: Path, objects: int = 200, frames: int = 500) -> str:
    """zstd vs snappy on object_frames with realistic masks; returns the smaller codec."""
    rng = np.random.default_rng(7)
    rles = [s for _ in range(objects) for s in realistic_rles(rng, frames)]
    rows = len(rles)
    x0 = rng.random(rows).astype(np.float32) * 500
    table = pa.table({
        "video_id": ["v" * 64] * rows, "track_key": [TRACK_KEY] * rows, "object_id": np.repeat(np.arange(objects), frames),
        "frame_idx": np.tile(np.arange(frames), objects), "t": np.tile(np.arange(frames), objects) / 10.0,
        "x0": x0, "y0": x0, "x1": x0 + 100, "y1": x0 + 80, "area": rng.integers(500, 9000, size=rows),
        "score": pa.array(rng.random(rows), pa.float32()), "mask_rle": rles, "mask_h": np.full(rows, H),
        "mask_w": np.full(rows, W),
    })
    print(f"\n== object_frames compression: {rows:,} rows of realistic masks "
          f"(mean RLE {np.mean([len(s) for s in rles]):.0f} chars; {table.nbytes / 2**20:.0f} MiB in memory)")
    sizes = {}
    for codec in ("snappy", "zstd"):
        path = workdir / f"frames-{codec}.parquet"
        write = timed(lambda p=path, c=codec: pq.write_table(table, p, compression=c), 3)
        scan = timed(lambda p=path: duckdb.sql(f"SELECT count(*), sum(length(mask_rle)) FROM '{p}'").fetchall(), 3)
        sizes[codec] = path.stat().st_size
        print(f"  {codec:<7} {sizes[codec] / 2**20:8.1f} MiB  ({sizes[codec] / rows:6.1f} B/row)  write {write:.3f} s  "
              f"scan all masks {scan:.3f} s")
    print(f"  zstd / snappy size: {sizes['zstd'] / sizes['snappy']:.2f}")
    return min(sizes, key=sizes.__getitem__)


def lookup_sql(n: int) -> dict[str, str]:
    vid = f"{n // 2:064x}"
    return {"one video's frames in a time window": f"SELECT * FROM video_frames('{vid}') WHERE t BETWEEN 10 AND 20",
            "one object's timeline": f"SELECT * FROM object_timeline('{vid}', 7)"}


LOOKUPS = tuple(lookup_sql(1))


def lookup_growth(workdir: Path, small: int, big: int, repeat: int) -> dict[str, float]:
    """time(big store) / time(small store) of each one-video lookup, both run alternately (fair under load)."""
    cons = {n: Store.open(str(workdir / f"store-{n}"), read_only=True).connect() for n in (small, big)}
    out = {}
    print(f"\n== one-video lookups, {small} vs {big} videos (run alternately)")
    for name in LOOKUPS:
        qa, qb = lookup_sql(small)[name], lookup_sql(big)[name]
        a, b = timed_pair(lambda qa=qa: cons[small].sql(qa).to_arrow_table(),
                          lambda qb=qb: cons[big].sql(qb).to_arrow_table(), repeat, budget_s=2.0)
        out[name] = b / a
        print(f"  {name:<52} {a * 1000:7.2f} ms -> {b * 1000:7.2f} ms   x{b / a:5.2f}")
    for con in cons.values():
        con.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="store sizes in videos")
    p.add_argument("--large", action="store_true", help="also N = 10,000")
    p.add_argument("--frames", type=int, default=500, help="sampled frames per object (default 500)")
    p.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    p.add_argument("--workdir", help="where to build the stores (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the stores")
    p.add_argument("--no-compression", action="store_true", help="skip the zstd / snappy comparison")
    args = p.parse_args(argv)
    sizes = sorted(set(args.sizes + ([10_000] if args.large else [])))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-store-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if not args.no_compression:
            bench_compression(workdir)
        results = {n: bench_size(workdir, n, args.frames, args.repeat) for n in sizes}
        growth = lookup_growth(workdir, sizes[0], sizes[-1], args.repeat) if len(sizes) > 1 else {}
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    small, big = results[sizes[0]], results[sizes[-1]]
    print(f"\n== goals ({sizes[0]} -> {sizes[-1]} videos)")
    ok = True

    def goal(text: str, passed: bool) -> None:
        nonlocal ok
        ok &= passed
        print(f"  {'PASS' if passed else 'FAIL'}  {text}")

    for name in LOOKUPS:
        grow = growth.get(name, big[name][0] / small[name][0])
        goal(f"{name}: x{grow:.2f} from {sizes[0]} to {sizes[-1]} videos, ratio to raw {big[name][1]:.2f} (<= 1.5)",
             grow <= 1.5 and (big[name][1] or 0) <= 1.5)
    at = results.get(1000, big)
    slowest = max((v[0], k) for k, v in at.items() if k.startswith("example "))
    goal(f"every example query < 0.3 s in-process (slowest: {slowest[1]} {slowest[0]:.3f} s)", slowest[0] < 0.3)
    start = big["CLI `query SELECT 1`: wall"][0]
    goal(f"CLI start-up {start:.2f} s < 0.5 s", start < 0.5)
    rss = big["CLI 1M rows to CSV: peak RSS MB"][0]
    goal(f"1M-row CSV stream peak RSS {rss:.0f} MB < 500 MB", rss < 500)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
