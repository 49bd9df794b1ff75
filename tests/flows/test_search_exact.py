"""The ranking keeps the best k descriptions before grouping them per object: it must give exactly what
grouping every description gives, also when many near-identical descriptions per object or a selective
--where make the first k too few (k then grows)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

COLORS = ["red", "green", "blue", "white"]
N_VIDEOS, N_OBJECTS, N_PROMPTS, DIM = 3, 120, 8, 16


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    """3 videos x 120 objects x 8 prompts = 2880 vectors; an object's 8 vectors are near-copies, so the best
    descriptions come in clumps of one object."""
    from flows.stages.index import vector_unit_key
    from flows.vectors import store_embedders
    from storage import Store
    from storage.query import open_views

    root = str(tmp_path_factory.mktemp("crowded") / "store")
    store = Store.open(root)
    rng = np.random.default_rng(0)
    embedder_id = f"wordllama:l2_supercat@test:{DIM}"
    ids = np.arange(N_OBJECTS, dtype=np.int64)
    written: dict[tuple[str, int, str], list[np.ndarray]] = {}
    for v in range(N_VIDEOS):
        vid = f"{v:064x}"
        colors = [COLORS[(i * 7 + v) % 4] if i % 9 else "purple" for i in ids]
        store.write_unit("videos", vid, "probe", pa.table({"video_id": [vid], "uri": [f"/v{v}.mp4"], "size_bytes": [1]}))
        store.write_unit("objects", vid, "t-x", pa.table({
            "video_id": [vid] * N_OBJECTS, "track_key": ["t-x"] * N_OBJECTS, "object_id": ids, "first_frame": ids,
            "last_frame": ids, "t_start": ids * 1.0, "t_end": ids + 1.0, "frames_present": ids * 0 + 1,
            "color": colors}))
        centres = rng.standard_normal((N_OBJECTS, DIM)).astype(np.float32)
        for p in range(N_PROMPTS):
            key = f"d-p{p}"
            object_ids = pa.array([[int(i)] if i % 10 else [int(i), int((i + 1) % N_OBJECTS)] for i in ids],
                                  pa.list_(pa.int64()))
            store.write_unit("descriptions", vid, key, pa.table({
                "video_id": [vid] * N_OBJECTS, "track_key": ["t-x"] * N_OBJECTS, "object_ids": object_ids,
                "describe_key": [key] * N_OBJECTS, "prompt_id": [f"p{p % 2}"] * N_OBJECTS,
                "prompt": ["q"] * N_OBJECTS, "task": ["caption"] * N_OBJECTS,
                "answer": [f"object {i} prompt {p}" for i in ids]}))
            vectors = centres + 0.05 * rng.standard_normal((N_OBJECTS, DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.write_unit("description_vectors", vid, vector_unit_key(key, embedder_id), pa.table({
                "video_id": [vid] * N_OBJECTS, "track_key": ["t-x"] * N_OBJECTS, "describe_key": [key] * N_OBJECTS,
                "object_ids": object_ids, "prompt_id": [f"p{p % 2}"] * N_OBJECTS,
                "embedder_id": [embedder_id] * N_OBJECTS, "dim": pa.array([DIM] * N_OBJECTS, pa.int32()),
                "vector": pa.array(list(vectors), pa.list_(pa.float32()))}))
            for row, vector in zip(object_ids.to_pylist(), vectors, strict=True):
                for oid in row:  # (video, object, colour) -> the vectors of every description about it
                    written.setdefault((vid, oid, colors[oid]), []).append(vector)
    store.refresh_views()
    store.close()
    con = open_views(os.path.join(root, "views.duckdb"), root)
    (chosen,) = store_embedders(con)
    assert chosen.n_vectors == N_VIDEOS * N_OBJECTS * N_PROMPTS
    yield con, chosen, written
    con.close()


def _numpy_best(written, q: np.ndarray, limit: int, keep) -> list[tuple[str, int, float]]:
    """The reference, from the vectors as written: each kept object's best dot product, best first."""
    best = [(vid, oid, float(max(np.dot(v, q) for v in vectors)))
            for (vid, oid, color), vectors in written.items() if keep(oid, color)]
    best.sort(key=lambda b: (-b[2], b[0], b[1]))
    return best[:limit]


_KEEP = {None: lambda oid, color: True, "color = 'red'": lambda oid, color: color == "red",
         "color = 'purple'": lambda oid, color: color == "purple", "object_id = 7": lambda oid, color: oid == 7}


def _keys(hits):
    return [(h.video_id, h.object_id, round(h.score, 5), h.describe_key) for h in hits]


@pytest.mark.parametrize("limit", [1, 5, 20, 60])
@pytest.mark.parametrize("where", [None, "color = 'red'", "color = 'purple'", "object_id = 7"])
def test_the_top_k_path_equals_grouping_every_description(crowded, limit, where):
    from flows.search import SearchRequest, rank

    con, chosen, written = crowded
    rng = np.random.default_rng(limit)
    for _ in range(3):
        q = rng.standard_normal(DIM).astype(np.float32)
        q /= np.linalg.norm(q)
        request = SearchRequest(text="x", where=where, limit=limit)
        fast, _ = rank(con, [(None, q)], chosen, request)
        full, _ = rank(con, [(None, q)], chosen, request, exhaustive=True)
        assert _keys(fast) == _keys(full)
        reference = _numpy_best(written, q, limit, _KEEP[where])
        assert [(h.video_id, h.object_id) for h in fast] == [(vid, oid) for vid, oid, _ in reference]
        np.testing.assert_allclose([h.score for h in fast], [s for _, _, s in reference], atol=1e-5)
        assert len(fast) == min(limit, len({(h.video_id, h.object_id) for h in full}) if where else limit)
        assert len({(h.video_id, h.object_id) for h in fast}) == len(fast)  # each object once


def test_several_queries_per_prompt_and_a_skipped_object_too(crowded):
    from flows.search import SearchRequest, rank

    con, chosen, _ = crowded
    rng = np.random.default_rng(9)
    queries = [(f"p{p}", (q := rng.standard_normal(DIM).astype(np.float32)) / np.linalg.norm(q)) for p in (0, 1)]
    skip = (f"{0:064x}", 3)
    request = SearchRequest(like=f"{0:064x}:3", limit=25)
    fast, _ = rank(con, queries, chosen, request, skip)
    full, _ = rank(con, queries, chosen, request, skip, exhaustive=True)
    assert _keys(fast) == _keys(full) and len(fast) == 25
    assert (skip[0], skip[1]) not in {(h.video_id, h.object_id) for h in fast}
