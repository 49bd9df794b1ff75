"""Vectors in SQL: embed() in `pixelrefer query`, the FLOAT[dim] view plain DuckDB clients read, several
embedders side by side (never mixed in one ranking), and mismatches that are errors, not rankings."""

from __future__ import annotations

import json
import os
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _search_store import CAR, OBJECTS, VIDEO_A, VIDEO_B, build_search_store  # noqa: E402


def _library_vectors(texts: list[str]) -> np.ndarray:
    """The reference: wordllama's own embedding (its package's weights), normalised by the library."""
    import wordllama

    model = wordllama.WordLlama.load("l2_supercat", cache_dir=os.path.dirname(wordllama.__file__),
                                     disable_download=True)
    return model.embed(texts, norm=True)


@pytest.fixture
def indexed(tmp_path) -> str:
    from flows.cli import main

    root = str(tmp_path / "store")
    build_search_store(root).close()
    assert main(["index", "--store", root]) == 0
    return root


def _query(capsys, root, sql: str) -> tuple[int, list[dict], str]:
    from flows.cli import main

    capsys.readouterr()
    code = main(["query", "--store", root, sql, "--format", "json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else []), out.err


def test_embed_is_the_store_embedders_query_vector_as_fixed_size_array(indexed, capsys):
    code, rows, err = _query(capsys, indexed, "SELECT typeof(embed('a dog')) AS t, embed('a dog') AS v, "
                                              "(SELECT DISTINCT typeof(vector) FROM description_vectors) AS stored")
    assert code == 0, err
    assert rows[0]["t"] == rows[0]["stored"] == "FLOAT[256]"
    np.testing.assert_allclose(rows[0]["v"], _library_vectors(["a dog"])[0], atol=1e-5)


def test_semantic_search_example_ranks_red_objects_by_meaning(indexed, capsys):
    from flows.cli import main

    capsys.readouterr()
    assert main(["query", "--store", indexed, "--file", "semantic_search", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    red = [(v, o, text) for v, o, color, text in OBJECTS if color == "red"]
    assert {(r["video_id"], r["object_id"]) for r in rows} == {(v, o) for v, o, _ in red}  # once each, red only
    query = _library_vectors(["dog on a leash"])[0]
    for r in rows:  # an object's score is its best description's cosine similarity to the query
        answers = {(VIDEO_A, 2): [CAR, "It is not moving."]}.get((r["video_id"], r["object_id"]), [r["caption"]])
        assert r["score"] == pytest.approx(float(np.max(_library_vectors(answers) @ query)), abs=1e-5)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


def test_a_plain_duckdb_client_ranks_against_a_vector_it_brings(indexed):
    con = duckdb.connect(os.path.join(indexed, "views.duckdb"), read_only=True)
    try:
        con.execute(f"SET file_search_path = '{indexed}'")
        assert con.execute("SELECT DISTINCT typeof(vector), dim FROM description_vectors").fetchall() == [
            ("FLOAT[256]", 256)]
        query = _library_vectors(["vehicle"])[0].tolist()
        top = con.execute("SELECT video_id, object_ids, array_cosine_similarity(vector, ?::FLOAT[256]) AS s "
                          "FROM description_vectors ORDER BY s DESC LIMIT 1", [query]).fetchone()
    finally:
        con.close()
    assert top[:2] == (VIDEO_A, [2])


def test_a_second_embedder_adds_vectors_beside_the_first_and_rankings_never_mix(indexed, capsys):
    from flows.cli import main
    from flows.stages.index import describe_units_of, index_descriptions
    from storage import Store

    store = Store.open(indexed)
    units = describe_units_of(store)
    before = {k for _, k in store.list_units("description_vectors")}
    report = index_descriptions(store, units[:1], "wordllama:l2_supercat:128", worker_id="w-partial")
    store.refresh_views()
    code, rows, _ = _query(capsys, indexed, "SELECT embedder_id, dim, is_current FROM vector_embedders ORDER BY dim")
    assert [(r["dim"], r["is_current"]) for r in rows] == [(128, False), (256, True)]  # partial: not current
    assert main(["index", "--store", indexed, "--embedder", "wordllama:l2_supercat:128"]) == 0
    after = {k for _, k in store.list_units("description_vectors")}
    assert before < after and len(after) == 2 * len(before)  # the old units are all still there
    assert {k.split(".", 1)[1].split("-")[0] for k in after} == {"wordllama256", "wordllama128"}
    code, rows, _ = _query(capsys, indexed, "SELECT embedder_id, dim, n_vectors, is_current FROM vector_embedders "
                                            "ORDER BY dim")
    assert [(r["dim"], r["is_current"]) for r in rows] == [(128, True), (256, False)]  # complete and newer
    assert rows[0]["n_vectors"] == rows[1]["n_vectors"] == 11
    assert rows[0]["embedder_id"] == report.embedder_id
    code, rows, _ = _query(capsys, indexed, "SELECT typeof(vector) AS t, count(*) AS n, typeof(embed('car')) AS q "
                                            "FROM description_vectors GROUP BY ALL")
    assert rows == [dict(t="FLOAT[128]", n=11, q="FLOAT[128]")]  # one embedder per view, embed() follows it
    code, rows, _ = _query(capsys, indexed, "SELECT dim, count(*) AS n FROM all_description_vectors GROUP BY ALL "
                                            "ORDER BY dim")
    assert rows == [dict(dim=128, n=11), dict(dim=256, n=11)]
    code, _, err = _query(capsys, indexed, "SELECT max(array_cosine_similarity(vector::FLOAT[128], embed('car'))) "
                                           "FROM all_description_vectors")
    assert code == 2 and "128" in err and "256" in err, err  # mixing dimensions fails, loudly
    code, _, err = _query(capsys, indexed, "SELECT max(array_cosine_similarity(vector::FLOAT[256], embed('car'))) "
                                           "FROM all_description_vectors WHERE dim = 256")
    assert code == 2 and "same size" in err  # the 256-d vectors against the 128-d query: refused
    assert main(["search", "--store", indexed, "vehicle", "--limit", "1"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"with {rows_embedder(indexed, 128)})")
    assert main(["search", "--store", indexed, "vehicle", "--embedder", "wordllama", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(CAR)
    store.close()


def rows_embedder(root: str, dim: int) -> str:
    import wordllama

    return f"wordllama:l2_supercat@{wordllama.__version__}:{dim}"


def test_embed_in_a_store_without_vectors_says_what_to_run(tmp_path, capsys):
    root = str(tmp_path / "store")
    build_search_store(root).close()
    code, _, err = _query(capsys, root, "SELECT embed('a dog')")
    assert code == 2 and "not indexed for search: run pixelrefer index --store" in err
    code, rows, _ = _query(capsys, root, "SELECT count(*) AS n FROM description_vectors")
    assert code == 0 and rows == [dict(n=0)]


def _write_foreign_vectors(root: str, embedder_id: str, dim: int) -> None:
    """Vectors recorded as made by `embedder_id` (an embedder this machine does not have)."""
    from flows.stages.index import vector_unit_key
    from storage import Store

    store = Store.open(root)
    rng = np.random.default_rng(0)
    v = rng.standard_normal((1, dim)).astype(np.float32)
    v /= np.linalg.norm(v)
    table = pa.table({"video_id": [VIDEO_B], "track_key": ["t-new"], "describe_key": ["d-caption-b"],
                      "object_ids": [[1]], "prompt_id": ["caption"], "embedder_id": [embedder_id], "dim": [dim],
                      "vector": pa.array([v[0]], pa.list_(pa.float32()))})
    store.write_unit("description_vectors", VIDEO_B, vector_unit_key("d-caption-b", embedder_id), table)
    store.refresh_views()
    store.close()


def test_vectors_of_an_embedder_this_machine_lacks_are_a_clear_mismatch(tmp_path, capsys):
    from flows.cli import main

    root = str(tmp_path / "store")
    build_search_store(root).close()
    old = "wordllama:l2_supercat@0.0.1:256"
    _write_foreign_vectors(root, old, 256)
    code = main(["search", "--store", root, "little dog"])
    err = capsys.readouterr().err
    assert code == 2 and f"the vectors were made by {old}" in err and "re-index" in err
    code, _, err = _query(capsys, root, "SELECT embed('little dog')")
    assert code == 2 and f"the vectors were made by {old}" in err


def test_a_query_vector_of_another_dimension_is_refused_before_ranking(indexed):
    from flows.search import SearchRequest, rank
    from flows.vectors import store_embedders
    from pixelrefer_core.embedding import EmbedderMismatchError
    from storage.query import open_views

    con = open_views(os.path.join(indexed, "views.duckdb"), indexed)
    try:
        (chosen,) = store_embedders(con)
        with pytest.raises(EmbedderMismatchError, match="256-d vectors"):
            rank(con, [(None, np.ones(128, np.float32) / np.sqrt(128))], chosen, SearchRequest(text="x"))
    finally:
        con.close()
