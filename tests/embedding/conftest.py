"""Fixtures of the embedder tests: the real wordllama embedder (weights shipped in its package) and a tiny
random sentence-transformers model saved to a folder once per session."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _embedding_support import save_tiny_sentence_transformer  # noqa: E402


@pytest.fixture(scope="session")
def wordllama_embedder():
    from pixelrefer_core.embedding import build_embedder

    return build_embedder("wordllama")


@pytest.fixture(scope="session")
def tiny_st_dir(tmp_path_factory) -> str:
    return str(save_tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "tiny-st", seed=0))
