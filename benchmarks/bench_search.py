"""Search benchmark: embed throughput per embedder, and search latency by brute force in DuckDB at 10k,
100k and 1M description vectors, with and without a --where filter.

    .venv/bin/python benchmarks/bench_search.py                      # everything (the 1M store takes minutes)
    .venv/bin/python benchmarks/bench_search.py --sizes 10000 100000 --skip-embed
    .venv/bin/python benchmarks/bench_search.py --st-model BAAI/bge-small-en-v1.5 --device cuda

Stores are built through the real storage path (Store.write_unit, one unit per video x describe_key, then
Store.refresh_views), with 2 captions per object, 1000 descriptions per video and 8 colours (the --where
filter `color = 'red'` keeps 1/8 of the objects). Vectors are random unit vectors labelled with the
wordllama embedder's identity, so `search()` runs exactly as for a user (query text embedded by wordllama,
ranking on a locked-down connection); only their values are not real. Latency is the median of
--queries queries after one warm-up (the first, cold, query is reported apart). The machine load
(os.getloadavg) is printed with the figures: this is a shared machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import duckdb

    from pixelrefer_core.embedding import Embedder

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

T = TypeVar("T")
COLORS = ["red", "green", "blue", "white", "black", "yellow", "brown", "grey"]
WORDS = ("a an the small big red blue green white black person man woman child dog puppy cat car truck bus "
         "bicycle bag backpack umbrella walking running parked standing sitting left right near road grass "
         "street wall door holding carrying wearing jacket hat two three moving slowly fast").split()
PER_VIDEO = 1000  # descriptions per video (2 prompts x 500 objects)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 14)))) for _ in range(n)]


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _median(fn: Callable[[T], object], items: Sequence[T]) -> float:
    """Median seconds of fn(item) over `items`."""
    return statistics.median(_timed(partial(fn, item)) for item in items)


def _embed_one(embedder: Embedder, text: str) -> None:
    embedder.embed_queries([text])


def _no_progress_bar(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET enable_progress_bar = false")


# -- embed throughput ---------------------------------------------------------------------------------------
def bench_embedders(st_model: str | None, device: str, n_texts: int) -> None:
    from pixelrefer_core.embedding import build_embedder

    texts = _texts(n_texts)
    refs = [("wordllama", "cpu"), ("wordllama:l2_supercat:64", "cpu")]
    if st_model:
        refs.append((f"sentence-transformers:{st_model}", device))
    print(f"\n== embed throughput ({len(texts)} texts of 5-13 words; {_load()})")
    for ref, on in refs:
        t_load = time.perf_counter()
        embedder = build_embedder(ref, device=on)
        t_load = time.perf_counter() - t_load
        n = len(texts) if ref.startswith("wordllama") else min(len(texts), 2000)
        embedder.embed(texts[:64])  # warm-up
        seconds = _timed(partial(embedder.embed, texts[:n]))
        q = _median(partial(_embed_one, embedder), texts[:50])
        print(f"{embedder.embedder_id}: load {t_load:.2f} s, {n / seconds:,.0f} texts/s ({n} texts), "
              f"one query {q * 1000:.1f} ms")


def bench_index(n_units: int, per_unit: int) -> None:
    """End to end through the index stage (read descriptions, embed, write units, catalog claims/done)."""
    from flows.stages.index import IndexUnit, index_units
    from flows.vectors import get_embedder
    from storage import Store

    root = tempfile.mkdtemp(prefix="bench-index-")
    try:
        store = Store.open(root)
        texts = _texts(n_units * per_unit, seed=1)
        for u in range(n_units):
            vid = f"{u:064x}"
            rows = texts[u * per_unit : (u + 1) * per_unit]
            store.write_unit("descriptions", vid, "d-bench", pa.table({
                "video_id": [vid] * per_unit, "track_key": ["t-bench"] * per_unit,
                "object_ids": [[i] for i in range(per_unit)], "describe_key": ["d-bench"] * per_unit,
                "prompt_id": ["caption"] * per_unit, "prompt": ["p"] * per_unit, "task": ["caption"] * per_unit,
                "answer": rows}))
        embedder = get_embedder("wordllama")
        units = [IndexUnit(f"{u:064x}", "d-bench", embedder.embedder_id) for u in range(n_units)]
        seconds = _timed(lambda: index_units(store, units, embedder, "bench", max_texts=2048))
        n = n_units * per_unit
        print(f"index stage, wordllama, SQLite catalog: {n_units} units x {per_unit} texts in {seconds:.2f} s = "
              f"{n / seconds:,.0f} texts/s, {n_units / seconds:.1f} units/s (per-unit catalog writes dominate "
              f"small units; {_load()})")
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- search latency -----------------------------------------------------------------------------------------
def build_store(root: str, n: int, dim: int, embedder_id: str, seed: int = 0) -> tuple[float, float]:
    """A store with `n` description vectors (see module docstring); returns (write s, refresh s)."""
    from flows.stages.index import vector_unit_key
    from storage import Store

    rng = np.random.default_rng(seed)
    store = Store.open(root)
    n_videos = max(1, n // PER_VIDEO)
    per_video = n // n_videos
    n_obj = per_video // 2
    started = time.perf_counter()
    for v in range(n_videos):
        vid = f"{v:064x}"
        store.write_unit("videos", vid, "probe", pa.table({
            "video_id": [vid], "uri": [f"/archive/cam{v % 50}/video{v}.mp4"], "size_bytes": [1000], "fps": [10.0],
            "num_frames": [1000], "duration_s": [100.0], "width": [640], "height": [480]}))
        ids = np.arange(n_obj, dtype=np.int64)
        store.write_unit("objects", vid, "t-bench", pa.table({
            "video_id": [vid] * n_obj, "track_key": ["t-bench"] * n_obj, "object_id": ids,
            "first_frame": ids, "last_frame": ids + 10, "t_start": ids / 10.0, "t_end": ids / 10.0 + 1.0,
            "frames_present": np.full(n_obj, 11), "color": [COLORS[i % len(COLORS)] for i in range(n_obj)]}))
        for prompt in ("caption", "detail"):
            key = f"d-{prompt}"
            object_ids = pa.array([[int(i)] for i in ids], pa.list_(pa.int64()))
            store.write_unit("descriptions", vid, key, pa.table({
                "video_id": [vid] * n_obj, "track_key": ["t-bench"] * n_obj, "object_ids": object_ids,
                "describe_key": [key] * n_obj, "prompt_id": [prompt] * n_obj, "prompt": [prompt] * n_obj,
                "task": ["caption"] * n_obj, "answer": [f"{prompt} of object {i}" for i in ids]}))
            vectors = rng.standard_normal((n_obj, dim), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.write_unit("description_vectors", vid, vector_unit_key(key, embedder_id), pa.table({
                "video_id": [vid] * n_obj, "track_key": ["t-bench"] * n_obj, "describe_key": [key] * n_obj,
                "object_ids": object_ids, "prompt_id": [prompt] * n_obj, "embedder_id": [embedder_id] * n_obj,
                "dim": pa.array([dim] * n_obj, pa.int32()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim).cast(
                    pa.list_(pa.float32()))}))
    written = time.perf_counter() - started
    refreshed = _timed(store.refresh_views)
    store.close()
    return written, refreshed


def _latencies(con: duckdb.DuckDBPyConnection, root: str, dim: int, n_queries: int,
               words: list[str]) -> tuple[float, ...]:
    """(cold first search(), plain top-20, the same from Parquet, search(), search() --where, grouping every
    description), in seconds."""
    from flows.search import SearchRequest, rank, search
    from flows.vectors import lazy_embedder, store_embedders

    (chosen,) = store_embedders(con)
    rng = np.random.default_rng(7)
    cold = _timed(lambda: search(con, SearchRequest(text=words[-1]), root, lazy_embedder))
    queries = [rng.standard_normal(dim).astype(np.float32) for _ in range(n_queries + 1)]
    queries = [q / np.linalg.norm(q) for q in queries]

    def kernel(q: np.ndarray) -> None:
        con.execute(f"SELECT video_id, object_ids, array_inner_product(vector, ?::FLOAT[{dim}]) AS s "
                    "FROM description_vectors ORDER BY s DESC LIMIT 20", [q.tolist()]).fetchall()

    def ranked(q: np.ndarray, where: str | None = None, exhaustive: bool = False) -> None:
        hits, _ = rank(con, [(None, q)], chosen, SearchRequest(text="x", where=where), exhaustive=exhaustive)
        assert len(hits) == 20

    import duckdb

    plain = duckdb.connect()  # the same scan over the Parquet units: what materialising the table saves
    plain.execute("SET enable_progress_bar = false")
    plain.execute(f"SET threads = {min(os.cpu_count() or 1, 8)}")
    parquet = os.path.join(root, "description_vectors", "**", "*.parquet").replace("'", "''")

    def from_parquet(q: np.ndarray) -> None:
        plain.execute(f"SELECT video_id, object_ids, array_inner_product(vector::FLOAT[{dim}], ?::FLOAT[{dim}]) AS s "
                      f"FROM read_parquet('{parquet}') ORDER BY s DESC LIMIT 20", [q.tolist()]).fetchall()

    from_parquet(queries[-1])
    t_parquet = _median(from_parquet, queries[:n_queries])
    plain.close()
    kernel(queries[-1])
    t_kernel = _median(kernel, queries[:n_queries])
    t_search = _median(lambda t: search(con, SearchRequest(text=t), root, lazy_embedder), words[:n_queries])
    t_where = _median(lambda q: ranked(q, "color = 'red'"), queries[:n_queries])
    t_exhaustive = _median(lambda q: ranked(q, exhaustive=True), queries[:n_queries])
    return cold, t_kernel, t_parquet, t_search, t_where, t_exhaustive


def bench_search(sizes: list[int], n_queries: int, keep: str | None) -> None:
    from flows.vectors import get_embedder
    from storage.query import open_views

    embedder = get_embedder("wordllama")
    dim = embedder.dim
    print(f"\n== search latency, brute force in DuckDB, {dim}-d vectors, median of {n_queries} queries ({_load()})")
    print("vectors | videos | objects | build (write + refresh) | views file | plain DuckDB top-20 | same from Parquet | "
          "search() | search() --where color='red' | grouping every description | cold first search()")
    words = _texts(n_queries + 1, seed=3)
    for n in sizes:
        root = os.path.join(keep, f"store-{n}") if keep else tempfile.mkdtemp(prefix=f"bench-search-{n}-")
        if keep and os.path.isdir(root):
            shutil.rmtree(root)
        try:
            written, refreshed = build_store(root, n, dim, embedder.embedder_id)
            size_mb = os.path.getsize(os.path.join(root, "views.duckdb")) / 2**20
            con = open_views(os.path.join(root, "views.duckdb"), root,
                             prepare=_no_progress_bar)
            try:
                cold, t_kernel, t_parquet, t_search, t_where, t_exhaustive = _latencies(con, root, dim, n_queries, words)
            finally:
                con.close()
            n_videos = max(1, n // PER_VIDEO)
            print(f"{n:>9,} | {n_videos:>6} | {n // 2:>8,} | {written:6.1f} + {refreshed:5.1f} s | {size_mb:7.0f} MB | "
                  f"{t_kernel:8.3f} s | {t_parquet:8.3f} s | {t_search:8.3f} s | {t_where:8.3f} s | {t_exhaustive:8.3f} s | "
                  f"{cold:6.3f} s   ({_load()})",
                  flush=True)
        finally:
            if not keep:
                shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=7)
    parser.add_argument("--texts", type=int, default=20_000, help="texts for the embed throughput")
    parser.add_argument("--st-model", help="also measure this sentence-transformers model (hub id or folder; "
                        "none ships with the project, so none by default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-embed", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--keep", help="build the stores in this folder and keep them")
    args = parser.parse_args(argv)
    st_model = args.st_model
    print(f"bench_search: {_load()}")
    if not args.skip_embed:
        bench_embedders(st_model, args.device, args.texts)
        bench_index(n_units=100, per_unit=50)
    if not args.skip_search:
        bench_search(args.sizes, args.queries, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
