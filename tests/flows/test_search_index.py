"""`pixelrefer index` and the index phase of the flows: what a unit holds, idempotence, resuming after an
interruption or a kill, embedders side by side, bad input, and a pipeline run that leaves every
description indexed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _search_store import build_search_store  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _vector_files(root: str) -> dict[str, int]:
    """{relative path: mtime_ns} of every description_vectors unit file."""
    base = os.path.join(root, "description_vectors")
    out = {}
    for folder, _, files in os.walk(base):
        for name in files:
            if name.endswith(".parquet"):
                path = os.path.join(folder, name)
                out[os.path.relpath(path, root)] = os.stat(path).st_mtime_ns
    return out


@pytest.fixture
def described(tmp_path) -> str:
    root = str(tmp_path / "store")
    build_search_store(root).close()
    return root


def test_index_writes_one_unit_per_descriptions_unit_holding_each_answers_vector(described, capsys):
    import wordllama

    from flows.cli import main
    from storage import Store

    assert main(["index", "--store", described]) == 0
    store = Store.open(described)
    units = store.list_units("descriptions")
    vectors = store.list_units("description_vectors")
    assert len(vectors) == len(units) == 4  # the old tracking's descriptions are indexed too
    reference = wordllama.WordLlama.load("l2_supercat", cache_dir=os.path.dirname(wordllama.__file__),
                                         disable_download=True)
    for video_id, key in units:
        desc = pq.read_table(store.unit_path("descriptions", video_id, key)).to_pylist()
        (vkey,) = [k for v, k in vectors if v == video_id and k.startswith(key + ".")]
        rows = pq.read_table(store.unit_path("description_vectors", video_id, vkey)).to_pylist()
        with_text = [d for d in desc if d["answer"] and d["answer"].strip()]
        assert [(r["object_ids"], r["prompt_id"], r["track_key"]) for r in rows] == [
            (d["object_ids"], d["prompt_id"], d["track_key"]) for d in with_text]  # the blank answer has none
        got = np.array([r["vector"] for r in rows], np.float32)
        assert {r["dim"] for r in rows} == {256} and got.shape == (len(with_text), 256)
        np.testing.assert_allclose(got, reference.embed([d["answer"] for d in with_text], norm=True), atol=1e-5)
        assert {r["embedder_id"] for r in rows} == {f"wordllama:l2_supercat@{wordllama.__version__}:256"}
    assert {u.state for u in store.catalog.units(stage="index")} == {"done"}
    store.close()


def test_index_twice_writes_nothing_the_second_time(described, capsys):
    from flows.cli import main

    assert main(["index", "--store", described]) == 0
    first = _vector_files(described)
    views = os.stat(os.path.join(described, "views.duckdb")).st_mtime_ns
    capsys.readouterr()
    assert main(["index", "--store", described]) == 0
    assert "nothing to do: every description is indexed" in capsys.readouterr().out
    assert _vector_files(described) == first and first
    assert os.stat(os.path.join(described, "views.duckdb")).st_mtime_ns == views


class _InterruptAfter:
    """The real embedder, with a Ctrl-C after `n` calls (what an interrupted `pixelrefer index` meets)."""

    def __init__(self, inner, n: int, delay_s: float = 0.0):
        self.inner, self.n, self.calls, self.delay_s = inner, n, 0, delay_s

    embedder_id = property(lambda self: self.inner.embedder_id)
    dim = property(lambda self: self.inner.dim)

    def embed(self, texts):
        self.calls += 1
        time.sleep(self.delay_s)
        if self.calls > self.n:
            raise KeyboardInterrupt
        return self.inner.embed(texts)

    def embed_queries(self, texts):
        return self.inner.embed_queries(texts)


def test_an_interrupted_index_resumes_with_what_is_left(described, capsys):
    from flows.cli import main
    from flows.stages.index import describe_units_of, index_units, plan_index
    from flows.vectors import get_embedder
    from storage import Store

    store = Store.open(described)
    embedder = _InterruptAfter(get_embedder("wordllama"), n=2)
    todo, _ = plan_index(store, describe_units_of(store), embedder.embedder_id)
    with pytest.raises(KeyboardInterrupt):
        index_units(store, todo, embedder, "w-interrupted", max_texts=1)
    kept = _vector_files(described)
    assert len(kept) == 2  # two units were written before the interruption
    states = {u.unit_key: (u.state, u.retryable) for u in store.catalog.units(stage="index")}
    assert sorted(s for s, _ in states.values()) == ["done", "done", "failed"]  # the one in hand: retryable
    assert all(r for s, r in states.values() if s == "failed")
    capsys.readouterr()
    assert main(["index", "--store", described]) == 0
    assert "2 unit(s) indexed" in capsys.readouterr().out
    now = _vector_files(described)
    assert len(now) == 4 and all(now[p] == kept[p] for p in kept)  # what was written is not redone
    store.close()


_KILLABLE = """
import sys, time
sys.path.insert(0, sys.argv[2])
from test_search_index import _InterruptAfter
from flows.vectors import get_embedder
from flows.settings import default_worker_id
from flows.stages.index import describe_units_of, index_units, plan_index
from storage import Store
store = Store.open(sys.argv[1])
embedder = _InterruptAfter(get_embedder("wordllama"), n=10**6, delay_s=1.0)
todo, _ = plan_index(store, describe_units_of(store), embedder.embedder_id)
print("started", flush=True)
index_units(store, todo, embedder, default_worker_id(), max_texts=1)
"""


def test_a_killed_index_is_taken_over_at_once_and_finished(described, capsys):
    from flows.cli import main
    from storage import Store

    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, described, os.path.dirname(__file__)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _vector_files(described) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert _vector_files(described), proc.communicate(timeout=10)[0] if proc.poll() is not None else "no unit"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    kept = _vector_files(described)
    store = Store.open(described)
    running = [u for u in store.catalog.units(stage="index") if u.state == "running"]
    assert running  # the killed process held a claim on the unit it was embedding
    capsys.readouterr()
    assert main(["index", "--store", described]) == 0  # takes the dead worker's claim over, no lease wait
    now = _vector_files(described)
    assert len(now) == 4 and all(now[p] == kept[p] for p in kept)
    assert {u.state for u in store.catalog.units(stage="index")} == {"done"}
    store.close()


def test_another_embedder_adds_units_and_leaves_the_old_ones(described, capsys):
    from flows.cli import main

    assert main(["index", "--store", described]) == 0
    first = _vector_files(described)
    assert main(["index", "--store", described, "--embedder", "wordllama:l2_supercat:64"]) == 0
    now = _vector_files(described)
    assert len(now) == 2 * len(first) and all(now[p] == first[p] for p in first)
    assert {os.path.basename(p).split(".")[1].split("-")[0] for p in now} == {"wordllama256", "wordllama64"}


def test_index_of_a_store_without_descriptions_says_to_describe_first(tmp_path, capsys):
    from flows.cli import main
    from storage import Store

    root = str(tmp_path / "store")
    Store.open(root).close()
    assert main(["index", "--store", root]) == 0
    out = capsys.readouterr().out
    assert "has no descriptions yet" in out and "pixelrefer describe" in out
    assert not os.path.exists(os.path.join(root, "description_vectors"))


@pytest.mark.parametrize("args, says", [
    (["--embedder", "openai:ada"], "unknown library 'openai'"),
    (["--embedder", "wordllama:l2_supercat:100"], "dimension 100 is not available"),
    (["--embedder", "sentence-transformers:/no/such/model"], "no such folder"),
    (["--batch-size", "0"], "--batch-size must be 1 or more"),
])
def test_index_bad_input_is_one_clear_line(described, capsys, args, says):
    from flows.cli import main

    capsys.readouterr()
    assert main(["index", "--store", described, *args]) == 2
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert line.startswith("pixelrefer index:") and says in line
    assert not _vector_files(described)


def test_index_needs_an_existing_store(tmp_path, capsys):
    from flows.cli import main

    assert main(["index", "--store", str(tmp_path / "never-made")]) == 2
    assert "no store at" in capsys.readouterr().err and not (tmp_path / "never-made").exists()


def _searchable(root: str) -> tuple[int, int]:
    """(descriptions with an answer, vectors of the current embedder), from the views."""
    from storage.query import run_query

    db = os.path.join(root, "views.duckdb")
    (n_desc,), = run_query(db, "SELECT count(*) FROM descriptions WHERE length(trim(coalesce(answer, ''))) > 0",
                           root=root)[1]
    (n_vec,), = run_query(db, "SELECT count(*) FROM description_vectors", root=root)[1]
    return n_desc, n_vec


def test_a_pipeline_run_leaves_every_description_indexed(clean_run):
    store, summary, _ = clean_run
    n_desc, n_vec = _searchable(store)
    assert n_desc > 0 and n_vec == n_desc
    assert any(n.startswith("index with wordllama:l2_supercat@") for n in summary.notes)
    assert "index" in summary.stage_seconds


def test_a_rerun_indexes_nothing_and_another_embedder_adds_its_units(prefect_server, clean_run, tmp_path,
                                                                     tiny_settings):
    from flows.archive import process_archive

    root = str(tmp_path / "store")
    shutil.copytree(clean_run[0], root)
    before = _vector_files(root)
    settings = tiny_settings(root, _archive_of(clean_run[0]))
    summary = process_archive(settings)
    assert _vector_files(root) == before
    assert any("0 unit(s) indexed" in n for n in summary.notes)
    summary = process_archive(settings.replace(embedder="wordllama:l2_supercat:128"))
    now = _vector_files(root)
    assert len(now) == 2 * len(before) and all(now[p] == before[p] for p in before)
    assert any("l2_supercat@" in n and ":128" in n for n in summary.notes)


def _archive_of(store_root: str) -> str:
    """The archive folder the clean run processed (its videos' common parent)."""
    from storage.query import run_query

    uris = [r[0] for r in run_query(os.path.join(store_root, "views.duckdb"), "SELECT uri FROM videos",
                                    root=store_root)[1]]
    return os.path.commonpath([os.path.dirname(u) for u in uris])


def test_a_describe_run_indexes_what_it_describes(prefect_server, clean_run, tmp_path, tiny_settings):
    from flows.describe import describe_objects

    root = str(tmp_path / "store")
    shutil.copytree(clean_run[0], root)
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text('- id: colour\n  task: qa\n  text: "What colour is <object>?"\n')
    before = _vector_files(root)
    summary = describe_objects(tiny_settings(root, prompts_file=str(prompts)))
    assert summary.describe_units_done > 0
    new = set(_vector_files(root)) - set(before)
    assert len(new) == summary.describe_units_done
    n_desc, n_vec = _searchable(root)
    assert n_vec == n_desc


def test_a_done_archive_run_with_a_new_embedder_only_indexes(prefect_server, clean_run, tmp_path, tiny_settings,
                                                              capsys):
    """The no-op shortcut of `pixelrefer run` must not swallow index work: a done archive run with another
    embedder indexes every description with it; run again, it has nothing to do (no flow runs)."""
    from flows.commands._pipeline import run_pipeline

    root = str(tmp_path / "store")
    shutil.copytree(clean_run[0], root)
    before = _vector_files(root)
    settings = tiny_settings(root, _archive_of(clean_run[0]), embedder="wordllama:l2_supercat:64")
    capsys.readouterr()
    assert run_pipeline("run", settings, "archive") == 0
    assert ":64: " in capsys.readouterr().out  # the summary's "index with wordllama:...:64: N unit(s) indexed"
    now = _vector_files(root)
    assert len(now) == 2 * len(before) and all(now[p] == before[p] for p in before)
    assert run_pipeline("run", settings, "archive") == 0
    assert "index with" not in capsys.readouterr().out  # the no-op summary: no flow ran
    assert _vector_files(root) == now
