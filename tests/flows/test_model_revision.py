"""--model-revision reaches the loader and descriptions name the commit that was loaded (issue 9 bug)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from storage import Store
from storage.query import run_query

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB_REPO = "Alibaba-DAMO-Academy/PixelRefer-Tiny"
SHA = {"main": "a" * 39 + "1", "v2": "b" * 39 + "2"}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """huggingface_hub's cache layout; main = the tiny checkpoint of seed 0, tag v2 = seed 1."""
    from pixelrefer_core.model.tiny import save_tiny_checkpoint

    cache = tmp_path_factory.mktemp("hf-cache")
    repo = cache / ("models--" + HUB_REPO.replace("/", "--"))
    for seed, (ref, sha) in enumerate(SHA.items()):
        save_tiny_checkpoint(repo / "snapshots" / sha, seed=seed)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(sha)
    return cache


def _run(archive, store, hub_cache, prefect_server, *model_args):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub_cache), PREFECT_API_URL=prefect_server)
    out = subprocess.run([sys.executable, "-m", "flows", "run", archive, "--store", str(store), *model_args,
                          "--segmenter", "motion", "--sample-fps", "6", "--frames-per-object", "2",
                          "--max-new-tokens", "4"], cwd=REPO_DIR, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    _, rows = run_query(Store.open(str(store), create=False).db_path,
                        "SELECT DISTINCT model_id FROM descriptions")
    _, answers = run_query(Store.open(str(store), create=False).db_path,
                           "SELECT video_id, object_ids, answer FROM descriptions ORDER BY ALL")
    return [r[0] for r in rows], answers


@pytest.fixture(scope="module")
def one_video(tmp_path_factory) -> str:
    from flows.demo_archive import TEST_SCENES, make_archive

    folder = tmp_path_factory.mktemp("one")
    make_archive(str(folder), TEST_SCENES[:1], corrupt=False)
    return str(folder)


def test_the_revision_is_loaded_and_recorded_as_its_commit(one_video, tmp_path, hub_cache, prefect_server):
    archive = one_video
    ids_v2, answers_v2 = _run(archive, tmp_path / "a", hub_cache, prefect_server,
                              "--model", HUB_REPO, "--model-revision", "v2")
    assert ids_v2 == [f"{HUB_REPO}@{SHA['v2']}"]
    ids_main, answers_main = _run(archive, tmp_path / "b", hub_cache, prefect_server, "--model", HUB_REPO)
    assert ids_main == [f"{HUB_REPO}@{SHA['main']}"]  # the commit, never "@main"
    snapshot_v2 = hub_cache / ("models--" + HUB_REPO.replace("/", "--")) / "snapshots" / SHA["v2"]
    _, answers_local = _run(archive, tmp_path / "c", hub_cache, prefect_server, "--model", str(snapshot_v2))
    assert answers_v2 == answers_local != answers_main  # v2's weights were the ones loaded
