"""Concept lists for text-prompted discovery: parsing, normalising and the errors users see."""

from __future__ import annotations

import pytest

from pixelrefer_core.errors import PromptError
from pixelrefer_core.tracking import ConceptSpec, parse_concepts, validate_concepts


def test_parse_a_comma_list():
    specs = parse_concepts("person,  Red car , dog")
    assert specs == [ConceptSpec("dog"), ConceptSpec("person"), ConceptSpec("red car")]
    assert [c.canonical() for c in specs] == ["dog@0.5", "person@0.5", "red car@0.5"]


def test_thresholds_override_and_name_their_concept():
    specs = validate_concepts(["car", ConceptSpec("Dog", 0.2)], thresholds={"CAR": 0.35})
    assert specs == [ConceptSpec("car", 0.35), ConceptSpec("dog", 0.2)]
    assert [c.canonical(0.4) for c in validate_concepts(["b", "a"], default_threshold=0.4)] == ["a@0.4", "b@0.4"]


@pytest.mark.parametrize(("text", "message"), [
    ("", "no concepts"),
    ("   ", "no concepts"),
    ("person,,car", "entry 2 is empty"),
    ("person, car,", "entry 3 is empty"),
    ("car, dog, Car", r"concept 3 \('Car'\): duplicate of concept 1"),
])
def test_bad_comma_lists(text, message):
    with pytest.raises(PromptError, match=message):
        parse_concepts(text)


@pytest.mark.parametrize(("concepts", "thresholds", "message"), [
    ([], None, "no concepts"),
    (["car", " "], None, r"concept 2 \(' '\): is blank"),
    (["car", 7], None, "must be text"),
    (["x" * 201], None, "longer than 200"),
    (["car"], {"car": 1.5}, r"concept 1 \('car'\): threshold 1.5 must be in \[0, 1\]"),
    (["car"], {"car": -0.1}, "must be in"),
    (["car"], {"car": float("nan")}, "must be in"),
    (["car"], {"car": "high"}, "not a number"),
    (["car"], {"bus": 0.3}, "'bus', which is not one of the concepts"),
    ([ConceptSpec("car", 2.0)], None, "must be in"),
])
def test_bad_concept_specs(concepts, thresholds, message):
    with pytest.raises(PromptError, match=message):
        validate_concepts(concepts, thresholds)
