"""The sentence-transformers path end to end: `pixelrefer index --embedder <folder>` with a tiny random model
saved in the test session, the vectors it writes, `pixelrefer search` and embed() with that embedder, and a
model whose files changed since indexing (a clear mismatch, never a ranking by another model)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "embedding"))

from _embedding_support import save_tiny_sentence_transformer  # noqa: E402
from _search_store import OBJECTS, VIDEO_A, build_search_store  # noqa: E402

# Answers of the latest tracking per object: its caption, plus the 'motion' answers about it.
MOTION = {(VIDEO_A, 2): ["It is not moving."], (VIDEO_A, 1): ["they are far apart"], (VIDEO_A, 4): ["they are far apart"]}


@pytest.fixture(scope="module")
def st_store(tmp_path_factory) -> tuple[str, str]:
    from flows.cli import main

    base = tmp_path_factory.mktemp("st-search")
    model = str(save_tiny_sentence_transformer(base / "tiny-st", seed=0))
    root = str(base / "store")
    build_search_store(root).close()
    assert main(["index", "--store", root, "--embedder", f"sentence-transformers:{model}"]) == 0
    return root, model


def _library(model: str):
    from pixelrefer_core.compat_torchvision import ensure_torchvision

    ensure_torchvision()
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model, device="cpu")


def test_index_writes_the_models_vectors_under_its_own_unit_keys(st_store):
    from pixelrefer_core.embedding import build_embedder
    from storage import Store

    root, model = st_store
    identity = build_embedder(f"sentence-transformers:{model}").embedder_id
    assert identity.startswith(f"sentence-transformers:{os.path.realpath(model)}@") and identity.endswith(":32")
    store = Store.open(root)
    library = _library(model)
    keys = store.list_units("description_vectors")
    assert len(keys) == 4 and all(".st32-" in k for _, k in keys)
    for video_id, key in keys:
        rows = pq.read_table(store.unit_path("description_vectors", video_id, key)).to_pylist()
        describe_key = key.split(".", 1)[0]
        answers = {tuple(d["object_ids"]): d["answer"] for d in
                   pq.read_table(store.unit_path("descriptions", video_id, describe_key)).to_pylist()}
        want = library.encode([answers[tuple(r["object_ids"])] for r in rows], normalize_embeddings=True)
        np.testing.assert_allclose(np.array([r["vector"] for r in rows]), want, atol=1e-5)
        assert {r["embedder_id"] for r in rows} == {identity} and {r["dim"] for r in rows} == {32}
    store.close()


def test_search_and_embed_use_the_stores_sentence_transformers_model(st_store, capsys):
    from flows.cli import main

    root, model = st_store
    library = _library(model)
    query = library.encode(["a parked vehicle"], normalize_embeddings=True)[0]
    best = {}
    for video_id, object_id, _, caption in OBJECTS:
        texts = [caption, *MOTION.get((video_id, object_id), [])]
        best[(video_id, object_id)] = float(np.max(library.encode(texts, normalize_embeddings=True) @ query))
    reference = sorted(best, key=lambda k: (-best[k], k))
    capsys.readouterr()
    assert main(["search", "--store", root, "a parked vehicle", "--limit", "8", "--format", "json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [(h["video_id"], h["object_id"]) for h in hits] == reference
    np.testing.assert_allclose([h["score"] for h in hits], [best[k] for k in reference], atol=1e-5)
    assert main(["query", "--store", root, "SELECT typeof(embed('car')) AS t, embed('car') AS v", "--format",
                 "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["t"] == "FLOAT[32]"
    np.testing.assert_allclose(row["v"], library.encode(["car"], normalize_embeddings=True)[0], atol=1e-5)


def test_a_model_changed_since_indexing_is_a_clear_mismatch(st_store, tmp_path):
    """In a new process (this one keeps the model it loaded, the one that made the vectors)."""
    root, model = st_store
    copy = str(tmp_path / "store")
    shutil.copytree(root, copy)
    backup = str(tmp_path / "model-backup")
    shutil.copytree(model, backup)
    try:
        shutil.rmtree(model)
        save_tiny_sentence_transformer(model, seed=1)  # retrained in place: same folder, other weights
        out = subprocess.run([sys.executable, "-m", "flows.cli", "search", "--store", copy, "a parked vehicle"],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "the vectors were made by sentence-transformers:" in out.stderr and "re-index" in out.stderr
        assert "Traceback" not in out.stderr
    finally:
        shutil.rmtree(model)
        shutil.copytree(backup, model)
