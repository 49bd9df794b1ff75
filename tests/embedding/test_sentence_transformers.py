"""The sentence-transformers embedder through its real loading and batching path, on a tiny random model
saved in this session (no download)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from _embedding_support import save_tiny_sentence_transformer

from pixelrefer_core.embedding import EmbedderError, EmbedderMismatchError, build_embedder
from pixelrefer_core.errors import ModelLoadError

TEXTS = ["a red car parked by the road", "a small puppy running across the grass", "a man with a backpack",
         "the big blue truck", "a cat", "a woman walking left on the road with a green bag"]


@pytest.fixture(scope="module")
def st_embedder(tiny_st_dir):
    return build_embedder(f"sentence-transformers:{tiny_st_dir}")


def test_a_local_folder_loads_and_names_itself_by_path_content_and_dimension(st_embedder, tiny_st_dir):
    library, rest = st_embedder.embedder_id.split(":", 1)
    path, revision_dim = rest.rsplit("@", 1)
    assert library == "sentence-transformers" and path == os.path.realpath(tiny_st_dir)
    revision, dim = revision_dim.split(":")
    assert len(revision) == 12 and int(dim) == st_embedder.dim == 32
    assert build_embedder(tiny_st_dir).embedder_id == st_embedder.embedder_id  # a bare folder means s-t


def test_vectors_match_the_library_and_do_not_depend_on_the_batch_size(st_embedder, tiny_st_dir):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(tiny_st_dir, device="cpu").encode(TEXTS, batch_size=len(TEXTS))
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    ours = st_embedder.embed(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    for batch_size in (1, 4):
        np.testing.assert_allclose(build_embedder(tiny_st_dir, batch_size=batch_size).embed(TEXTS), ours, atol=1e-5)
    np.testing.assert_allclose(st_embedder.embed_queries(TEXTS), ours, atol=1e-5)  # no query prompt in this model


def test_the_identity_rebuilds_the_same_embedder_and_a_changed_folder_is_a_mismatch(st_embedder, tiny_st_dir,
                                                                                   tmp_path):
    assert build_embedder(st_embedder.embedder_id).embedder_id == st_embedder.embedder_id
    copy = tmp_path / "model"
    shutil.copytree(tiny_st_dir, copy)
    before = build_embedder(str(copy)).embedder_id
    shutil.rmtree(copy)
    save_tiny_sentence_transformer(copy, seed=1)  # same architecture and file sizes, other weights
    with pytest.raises(EmbedderMismatchError, match="re-index"):
        build_embedder(before)


def test_a_truncated_dimension_and_an_impossible_one(tiny_st_dir):
    assert build_embedder(f"sentence-transformers:{tiny_st_dir}:16").embed(["a dog"]).shape == (1, 16)
    with pytest.raises(EmbedderError, match="makes 32-d vectors"):
        build_embedder(f"sentence-transformers:{tiny_st_dir}:64")


@pytest.mark.parametrize("ref, says", [("sentence-transformers:/no/such/model", "no such folder"),
                                       ("sentence-transformers:nobody/no-such-model", "hub download failed")])
def test_a_missing_model_is_a_load_error_naming_it(ref, says):
    with pytest.raises(ModelLoadError, match=says):
        build_embedder(ref)


def test_a_folder_that_is_not_a_sentence_transformers_model_is_a_load_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        build_embedder(f"sentence-transformers:{tmp_path}")


def test_a_missing_gpu_is_a_clear_error(tiny_st_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(EmbedderError, match="no usable CUDA device"):
        build_embedder(tiny_st_dir, device="cuda")
    with pytest.raises(EmbedderError, match="use cpu, cuda"):
        build_embedder(tiny_st_dir, device="tpu")
