"""Prompt files and unit keys: what users write and what decides whether work is redone."""

from __future__ import annotations

import pytest

from flows.keys import describe_key, track_key
from flows.prompts import DEFAULT_PROMPTS, PromptSpec, load_prompts, parse_prompts, question_text
from pixelrefer_core.errors import PromptError

YAML_OK = """\
- id: short
  task: caption
  text: "There is one object in the video: <object>.\\nWhat is it?"
- id: pair
  task: qa
  text: What are <object0> and <object1> doing?
"""


def test_yaml_prompts_parse_and_map_to_region_placeholders():
    prompts = parse_prompts(YAML_OK)
    assert [p.id for p in prompts] == ["short", "pair"]
    assert [p.n_objects for p in prompts] == [1, 2]
    assert question_text(prompts[0]) == "There is one object in the video: <region>.\nWhat is it?"
    q = question_text(prompts[1])
    assert q.startswith("There is 2 objects in the video: <object0><region>, <object1><region>. ")
    assert q.count("<region>") == 2


def test_default_prompt_is_the_official_one_sentence_caption():
    (default,) = DEFAULT_PROMPTS
    assert question_text(default) == (
        "There is one object in the video: <region>.\n"
        "Please give a description of the highlighted object in the video. Using only one sentense."
    )


def test_text_without_placeholder_gets_the_object_introduced():
    q = question_text(PromptSpec(id="x", task="qa", text="What colour is it?"))
    assert q == "There is one object in the video: <region>.\nWhat colour is it?"


@pytest.mark.parametrize(
    "text, where, why",
    [
        ("- id: a\n  task: caption\n  text: ok <object>\n- id: b\n  task: summary\n  text: x\n", "line 4", "task"),
        ("- id: a\n  task: caption\n  text: ok <object>\n- id: a\n  task: qa\n  text: y\n", "line 4", "duplicate"),
        ("- id: a\n  task: qa\n", "line 1", "missing 'text'"),
        ("- id: a\n  task: qa\n  text: <object0> vs <object2>\n", "line 1", "<object0> and <object1>"),
        ("- id: a\n  task: qa\n  text: look at <region>\n", "line 1", "<region>"),
        ("- id: a\n  task: qa\n   text: [unclosed\n", "line 3", "invalid YAML"),
        # an unclosed quote is noticed at the end of the file: the error names the line it opens on
        ('- id: a\n  task: qa\n  text: "unclosed\n- id: b\n  task: qa\n', "line 3", "quoted scalar"),
        ("{}", "", "non-empty list"),
    ],
)
def test_invalid_yaml_prompt_files_name_the_line_and_reason(text, where, why):
    with pytest.raises(PromptError) as err:
        parse_prompts(text, source="p.yaml")
    assert where in str(err.value) and why in str(err.value)
    assert str(err.value).startswith("p.yaml")


def test_invalid_json_prompt_files_name_position_or_entry(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text('[{"id": "a", "task": "qa", "text": "x <object>"},\n {"id": "b", "task": "qa", "text": 5}]')
    with pytest.raises(PromptError, match=r"entry 1: text must be a string"):
        load_prompts(str(bad))
    bad.write_text('[{"id": "a", "task": "qa",\n "text": }]')
    with pytest.raises(PromptError, match=r"line 2, column \d+: invalid JSON"):
        load_prompts(str(bad))
    with pytest.raises(PromptError, match="cannot read"):
        load_prompts(str(tmp_path / "missing.yaml"))


def test_track_key_is_stable_and_changes_with_each_input():
    base = track_key({"sample_fps": 2.0, "chunk_size": 16}, "motion:v1", "tracker-v1")
    assert base == track_key({"chunk_size": 16, "sample_fps": 2}, "motion:v1", "tracker-v1")
    assert base != track_key({"sample_fps": 3.0, "chunk_size": 16}, "motion:v1", "tracker-v1")
    assert base != track_key({"sample_fps": 2.0, "chunk_size": 16}, "sam2:tiny", "tracker-v1")
    assert base != track_key({"sample_fps": 2.0, "chunk_size": 16}, "motion:v1", "tracker-v2")


def test_describe_key_changes_with_prompt_model_generation_frames_and_version():
    args = ("t-1", "describe <object>", "caption", "m@main", {"max_new_tokens": 8}, {"k": 4}, "e1")
    base = describe_key(*args)
    assert base == describe_key(*args)
    for i, other in enumerate(["t-2", "other", "qa", "m@v2", {"max_new_tokens": 9}, {"k": 5}, "e2"]):
        changed = list(args)
        changed[i] = other
        assert describe_key(*changed) != base, f"argument {i} does not change the key"
