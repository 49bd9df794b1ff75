"""Embedder references and identities, and what a search text must be."""

from __future__ import annotations

import pytest

from pixelrefer_core.embedding import (
    STOP_WORDS,
    EmbedderRef,
    QueryTextError,
    UnknownEmbedderError,
    check_query_text,
    parse_ref,
)


@pytest.mark.parametrize("text, want", [
    ("wordllama", EmbedderRef("wordllama", "l2_supercat")),
    ("wordllama:l2_supercat:128", EmbedderRef("wordllama", "l2_supercat", None, 128)),
    ("wordllama:l2_supercat@0.4.0.post1:256", EmbedderRef("wordllama", "l2_supercat", "0.4.0.post1", 256)),
    ("sentence-transformers:BAAI/bge-small-en-v1.5", EmbedderRef("sentence-transformers", "BAAI/bge-small-en-v1.5")),
    ("st:BAAI/bge-small-en-v1.5@main", EmbedderRef("sentence-transformers", "BAAI/bge-small-en-v1.5", "main")),
    ("BAAI/bge-small-en-v1.5", EmbedderRef("sentence-transformers", "BAAI/bge-small-en-v1.5")),
    ("sentence-transformers:/models/mini@0123456789ab:384",
     EmbedderRef("sentence-transformers", "/models/mini", "0123456789ab", 384)),
])
def test_references_and_identities_parse(text, want):
    ref = parse_ref(text)
    assert ref == want
    if ref.revision and ref.dim:  # an identity prints back as itself
        assert parse_ref(ref.identity).identity == ref.identity == text.replace("st:", "sentence-transformers:")


@pytest.mark.parametrize("text, says", [
    ("", "empty"), ("   ", "empty"), ("openai:text-embedding-3", "unknown library 'openai'"),
    ("nonsense", "not a known library"), ("sentence-transformers:", "needs a model"),
    ("wordllama:l2_supercat:0", "positive"),
])
def test_unknown_or_malformed_embedders_are_refused_with_the_forms_allowed(text, says):
    with pytest.raises(UnknownEmbedderError) as err:
        parse_ref(text)
    assert says in str(err.value) and "wordllama[:CONFIG[:DIM]]" in str(err.value)


@pytest.mark.parametrize("text", ["", "   \n\t", None])
def test_an_empty_search_text_is_refused(text):
    with pytest.raises(QueryTextError, match="empty"):
        check_query_text(text)


@pytest.mark.parametrize("text", ["the", "of a", "Is it THE...?", "what is this"])
def test_a_search_text_of_only_stop_words_is_refused(text):
    with pytest.raises(QueryTextError, match="only stop words"):
        check_query_text(text)


def test_punctuation_only_and_overlong_texts_are_refused():
    with pytest.raises(QueryTextError, match="no words"):
        check_query_text("?!  ...")
    with pytest.raises(QueryTextError, match="at most"):
        check_query_text("dog " * 1000)


@pytest.mark.parametrize("text", ["red car", "  a  person\ncarrying a bag ", "two", "left", "chien"])
def test_texts_with_something_to_look_for_pass_with_spaces_collapsed(text):
    assert check_query_text(text) == " ".join(text.split())


def test_describing_words_are_not_stop_words():
    assert not {"red", "left", "small", "two", "dog", "moving"} & STOP_WORDS
