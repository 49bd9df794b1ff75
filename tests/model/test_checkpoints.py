"""Checkpoint resolution and identity: local folders, and hub ids through a real (offline) HF cache."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

from pixelrefer_core.checkpoints import local_checkpoint_identity, resolve_checkpoint
from pixelrefer_core.errors import ModelLoadError
from pixelrefer_core.model import load_pixelrefer
from pixelrefer_core.model.tiny import save_tiny_checkpoint

SHA_MAIN = "a" * 39 + "1"
SHA_V2 = "b" * 39 + "2"
REPO = "Alibaba-DAMO-Academy/PixelRefer-Tiny"


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """huggingface_hub's cache layout: models--owner--name/{refs/<branch or tag>, snapshots/<commit>/...}.

    main holds the tiny checkpoint of seed 0, tag v2 the one of seed 1.
    """
    cache = tmp_path_factory.mktemp("hf-cache")
    repo = cache / ("models--" + REPO.replace("/", "--"))
    for ref, sha, seed in (("main", SHA_MAIN, 0), ("v2", SHA_V2, 1)):
        save_tiny_checkpoint(repo / "snapshots" / sha, seed=seed)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(sha)
    return cache


def test_tests_run_offline():
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE  # tests/conftest.py sets HF_HUB_OFFLINE=1 before huggingface_hub loads


def test_hub_id_resolves_to_the_commit_of_the_revision(hub_cache):
    main = resolve_checkpoint(REPO, cache_dir=hub_cache)
    assert main.model_id == f"{REPO}@{SHA_MAIN}"
    assert main.path.name == SHA_MAIN and (main.path / "config.json").is_file()
    tagged = resolve_checkpoint(REPO, "v2", cache_dir=hub_cache)
    assert tagged.model_id == f"{REPO}@{SHA_V2}"
    by_commit = resolve_checkpoint(REPO, SHA_V2, cache_dir=hub_cache)
    assert by_commit == tagged
    assert resolve_checkpoint(REPO, "main", cache_dir=hub_cache, config_only=True) == main


def test_loader_downloads_the_revision_it_is_given(hub_cache):
    main, _ = load_pixelrefer(REPO, cache_dir=hub_cache)
    tagged, _ = load_pixelrefer(REPO, revision="v2", cache_dir=hub_cache)
    key = "model.region_encoder.pos_linear.weight"
    snapshot_v2 = hub_cache / ("models--" + REPO.replace("/", "--")) / "snapshots" / SHA_V2
    saved_v2 = load_file(snapshot_v2 / "model.safetensors")
    assert torch.equal(tagged.state_dict()[key], saved_v2[key])
    assert not torch.equal(main.state_dict()[key], tagged.state_dict()[key])


def test_unknown_revision_or_repo_is_a_load_error_naming_it(hub_cache):
    with pytest.raises(ModelLoadError, match="at revision 'v9'"):
        resolve_checkpoint(REPO, "v9", cache_dir=hub_cache)
    with pytest.raises(ModelLoadError, match="someone/missing"):
        load_pixelrefer("someone/missing", cache_dir=hub_cache)


def test_local_identity_follows_content_not_location(tmp_path, tiny_dir):
    copy = tmp_path / "elsewhere" / os.path.basename(tiny_dir)
    shutil.copytree(tiny_dir, copy)
    same = resolve_checkpoint(copy)
    assert same.path == copy
    assert same.model_id == local_checkpoint_identity(tiny_dir) == resolve_checkpoint(tiny_dir).model_id
    assert same.model_id.startswith("ckpt@") and len(same.model_id.split("@")[1]) == 12
    config = copy / "config.json"
    config.write_text(config.read_text().replace('"mask_num": 32', '"mask_num": 16'))
    assert resolve_checkpoint(copy).model_id != same.model_id
    shutil.copytree(tiny_dir, tmp_path / "w")
    with open(tmp_path / "w" / "model.safetensors", "ab") as fh:  # weights of another size
        fh.write(b"\0")
    assert resolve_checkpoint(tmp_path / "w").model_id.split("@")[1] != same.model_id.split("@")[1]


def test_revision_for_a_local_folder_is_refused(tiny_dir):
    with pytest.raises(ModelLoadError, match="revision"):
        resolve_checkpoint(tiny_dir, "main")


def test_supported_model_types_are_the_config_classes_types():
    from pixelrefer_core.checkpoints import SUPPORTED_MODEL_TYPES
    from pixelrefer_core.model import PixelReferConfig, PixelReferLiteConfig

    assert set(SUPPORTED_MODEL_TYPES) == {PixelReferConfig.model_type, PixelReferLiteConfig.model_type}
