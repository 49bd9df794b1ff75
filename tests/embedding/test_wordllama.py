"""The default embedder with its real weights: semantics, batching, identity, truncation, bad input."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
from _embedding_support import BACKPACK, CAR, DESCRIPTIONS, PUPPY

from pixelrefer_core.embedding import EmbedderError, EmbedderMismatchError, build_embedder


def _best(embedder, query: str, texts=DESCRIPTIONS) -> str:
    scores = embedder.embed_queries([query]) @ embedder.embed(list(texts)).T
    return texts[int(np.argmax(scores[0]))]


@pytest.mark.parametrize("query, want", [("little dog", PUPPY), ("person carrying a bag", BACKPACK),
                                         ("vehicle", CAR)])
def test_real_wordllama_semantics_rank_the_meant_description_first(wordllama_embedder, query, want):
    assert _best(wordllama_embedder, query) == want


def test_vectors_are_float32_unit_norm_in_input_order_and_independent_of_batching(wordllama_embedder):
    texts = [*DESCRIPTIONS, "a blue truck", "two people talking", "a cat on a wall", "x"]
    whole = wordllama_embedder.embed(texts)
    assert whole.dtype == np.float32 and whole.shape == (len(texts), 256)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)
    small_batches = build_embedder("wordllama", batch_size=2).embed(texts)
    np.testing.assert_allclose(small_batches, whole, atol=1e-6)
    one_by_one = np.stack([wordllama_embedder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(one_by_one, whole, atol=1e-6)  # row i is text i, whatever else is in the batch
    assert wordllama_embedder.embed([]).shape == (0, 256)


def test_identity_names_library_model_revision_and_dimension(wordllama_embedder):
    import wordllama

    assert wordllama_embedder.embedder_id == f"wordllama:l2_supercat@{wordllama.__version__}:256"
    assert wordllama_embedder.dim == 256
    again = build_embedder(wordllama_embedder.embedder_id)  # an identity builds the same embedder
    assert again.embedder_id == wordllama_embedder.embedder_id


def test_a_truncated_dimension_is_its_own_embedder_and_keeps_the_semantics():
    small = build_embedder("wordllama:l2_supercat:128")
    assert small.dim == 128 and small.embedder_id.endswith(":128")
    assert small.embed(["a dog"]).shape == (1, 128)
    assert _best(small, "little dog") == PUPPY


def test_an_identity_of_another_wordllama_version_is_a_mismatch_not_a_silent_substitute():
    with pytest.raises(EmbedderMismatchError, match="wordllama:l2_supercat@0.0.1:256"):
        build_embedder("wordllama:l2_supercat@0.0.1:256")


@pytest.mark.parametrize("ref, says", [("wordllama:no_such_model", "has no model 'no_such_model'"),
                                       ("wordllama:l2_supercat:100", "dimension 100 is not available"),
                                       ("wordllama:l2_supercat:512", "dimension 512 is not available")])
def test_models_and_dimensions_wordllama_cannot_give_are_clear_errors(ref, says):
    with pytest.raises(EmbedderError, match=says):
        build_embedder(ref)


@pytest.mark.parametrize("texts, says", [(["a dog", ""], "text 1 is empty"), (["a dog", None], "text 1 is NoneType"),
                                         ("a dog", "not one string")])
def test_bad_texts_are_refused_before_embedding(wordllama_embedder, texts, says):
    with pytest.raises(EmbedderError, match=says):
        wordllama_embedder.embed(texts)


def test_loading_wordllama_leaves_the_programs_logging_alone():
    code = ("import logging; from pixelrefer_core.embedding import build_embedder; build_embedder('wordllama'); "
            "print(len(logging.getLogger().handlers), logging.getLogger().level)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", str(logging.WARNING)], out.stdout + out.stderr
    assert "INFO" not in out.stderr


_OFFLINE = """
import socket, sys

def refuse(*args, **kwargs):
    raise OSError("network refused by the test")

socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from pixelrefer_core.embedding import build_embedder

embedder = build_embedder("wordllama")
print(embedder.embedder_id, embedder.embed(["a small puppy"]).shape)
"""


def test_wordllama_loads_and_embeds_with_no_network_and_no_cache(tmp_path):
    """What a machine with no network and a fresh home meets: the weights and the tokenizer come from the
    package, nothing is downloaded nor read from ~/.cache."""
    import os

    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "HF_HOME": str(home / "hf")}
    out = subprocess.run([sys.executable, "-c", _OFFLINE], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["(1,", "256)"] and out.stdout.startswith("wordllama:l2_supercat@")
    assert not any(home.rglob("*")), list(home.rglob("*"))  # nothing written to a cache
