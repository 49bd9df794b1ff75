"""`pixelrefer search` with real wordllama embeddings: ranking by meaning, --where before ranking, one
object once, --like, --prompt, output formats, bad input, and a start that imports only what it needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _search_store import (  # noqa: E402
    BACKPACK,
    CAR,
    DOG_LIKE,
    OBJECTS,
    PUPPY,
    THUMB_FRAME,
    VIDEO_A,
    VIDEO_B,
    build_search_store,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLOR = {(v, o): c for v, o, c, _ in OBJECTS}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> str:
    from flows.cli import main

    root = str(tmp_path_factory.mktemp("search") / "store")
    build_search_store(root).close()
    assert main(["index", "--store", root]) == 0
    return root


def _search(capsys, root, *args) -> tuple[int, list[dict], str]:
    from flows.cli import main

    capsys.readouterr()
    code = main(["search", "--store", root, *args, "--format", "json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else []), out.err


@pytest.mark.parametrize("query, text", [("little dog", PUPPY), ("person carrying a bag", BACKPACK), ("vehicle", CAR)])
def test_the_meant_object_ranks_first(indexed, capsys, query, text):
    code, hits, err = _search(capsys, indexed, query)
    assert code == 0, err
    assert hits[0]["text"] == text
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0


def test_each_hit_names_its_video_object_time_span_text_and_prompt(indexed, capsys):
    code, hits, _ = _search(capsys, indexed, "vehicle", "--limit", "1")
    assert code == 0 and len(hits) == 1
    assert hits[0] == dict(rank=1, score=pytest.approx(hits[0]["score"]), uri="/videos/park.mp4", video_id=VIDEO_A,
                           object_id=2, t_start=2.0, t_end=4.0, prompt_id="caption", text=CAR,
                           thumbnail_frame=THUMB_FRAME)
    # An object without a thumbnail row: the column is there, empty.
    code, hits, _ = _search(capsys, indexed, "person carrying a bag", "--where", f"objects.video_id = '{VIDEO_B}'")
    assert code == 0 and hits and all(h["thumbnail_frame"] is None for h in hits)


def test_an_object_appears_once_with_its_best_description(indexed, capsys):
    """The car has a caption and an answer to the 'motion' prompt; a pair answer is about two objects."""
    code, hits, _ = _search(capsys, indexed, "a red car that is not moving", "--limit", "50")
    keys = [(h["video_id"], h["object_id"]) for h in hits]
    assert code == 0 and len(keys) == len(set(keys)) == len(OBJECTS)  # every object once, nothing from the old tracking
    car = hits[keys.index((VIDEO_A, 2))]
    assert car["rank"] == 1
    code, hits, _ = _search(capsys, indexed, "far apart", "--limit", "2")
    assert {(h["video_id"], h["object_id"]) for h in hits} == {(VIDEO_A, 1), (VIDEO_A, 4)}  # the pair, once each
    assert {h["text"] for h in hits} == {"they are far apart"}


def test_only_the_latest_tracking_is_searched(indexed, capsys):
    code, hits, _ = _search(capsys, indexed, "a little dog, a small puppy", "--limit", "50")
    assert code == 0 and all(h["object_id"] != 9 for h in hits)
    assert "a little dog, a small puppy" not in {h["text"] for h in hits}


def test_where_restricts_before_ranking(indexed, capsys):
    code, hits, _ = _search(capsys, indexed, "little dog", "--where", "color = 'red'", "--limit", "10")
    assert code == 0 and {(h["video_id"], h["object_id"]) for h in hits} == {(VIDEO_A, 2), (VIDEO_B, 2)}
    code, hits, _ = _search(capsys, indexed, "vehicle", "--where", "videos.uri LIKE '%street%'", "--limit", "10")
    assert code == 0 and hits and all(h["video_id"] == VIDEO_B for h in hits) and len(hits) == 4
    code, hits, err = _search(capsys, indexed, "vehicle", "--where", "color = 'purple'")
    assert code == 0 and hits == []


def test_like_returns_the_dog_like_objects_before_the_car(indexed, capsys):
    code, hits, err = _search(capsys, indexed, "--like", f"{VIDEO_A[:8]}:1", "--limit", "20")
    assert code == 0, err
    keys = [(h["video_id"], h["object_id"]) for h in hits]
    assert (VIDEO_A, 1) not in keys  # not itself
    assert set(keys[: len(DOG_LIKE)]) == DOG_LIKE
    assert keys.index((VIDEO_A, 2)) >= len(DOG_LIKE)
    code, hits, _ = _search(capsys, indexed, "--like", f"{VIDEO_A}:1", "--where", "color = 'red'")
    assert code == 0 and all(COLOR[(h["video_id"], h["object_id"])] == "red" for h in hits)


def test_prompt_restricts_to_one_prompts_descriptions(indexed, capsys):
    code, hits, _ = _search(capsys, indexed, "moving", "--prompt", "motion", "--limit", "10")
    assert code == 0 and {h["prompt_id"] for h in hits} == {"motion"}
    assert {(h["video_id"], h["object_id"]) for h in hits} == {(VIDEO_A, 2), (VIDEO_A, 1), (VIDEO_A, 4)}
    code, _, err = _search(capsys, indexed, "moving", "--prompt", "nope")
    assert code == 2 and "--prompt 'nope'" in err and "caption, motion" in err


def test_table_and_csv_formats(indexed, capsys):
    from flows.cli import main

    capsys.readouterr()
    assert main(["search", "--store", indexed, "little dog", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert [c.strip() for c in out.splitlines()[0].split("|")][:4] == ["rank", "score", "uri", "video_id"]
    assert PUPPY in out and "(3 rows)" in out and "wordllama:l2_supercat@" in out
    assert main(["search", "--store", indexed, "little dog", "--limit", "2", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "rank,score,uri,video_id,object_id,t_start,t_end,thumbnail_frame,prompt_id,text"
    assert len(lines) == 3
    assert lines[1].endswith(PUPPY)


@pytest.mark.parametrize("args, says", [
    ([""], "the search text is empty"),
    (["   "], "the search text is empty"),
    (["the of a"], "only stop words"),
    (["dog", "--limit", "0"], "--limit must be 1 or more, not 0"),
    (["dog", "--limit", "-3"], "--limit must be 1 or more, not -3"),
    (["--like", f"{VIDEO_A}:77"], "has no object 77"),
    (["--like", "ffff:1"], "no tracked video has an id starting with 'ffff'"),
    (["--like", "nonsense"], "give VIDEO_ID:OBJECT_ID"),
    (["dog", "--like", f"{VIDEO_A}:1"], "exactly one"),
    ([], "exactly one"),
    (["dog", "--where", "1; DROP TABLE objects"], "not allowed"),
    (["dog", "--where", "nosuch = 1"], "unknown column 'nosuch'"),
    (["dog", "--where", "color"], "not a boolean expression"),
    (["dog", "--embedder", "wordllama:l2_supercat:128"], "no vectors made by"),
    (["dog", "--embedder", "foo:bar"], "unknown library 'foo'"),
])
def test_bad_input_is_one_clear_line(indexed, capsys, args, says):
    from flows.cli import main

    capsys.readouterr()
    code = main(["search", "--store", indexed, *args])
    err = capsys.readouterr().err
    assert code == (1 if "no vectors made by" in says else 2), err
    (line,) = err.strip().splitlines()
    assert line.startswith("pixelrefer search:") and says in line and "Traceback" not in err


def test_a_store_without_descriptions_says_to_describe_first(tmp_path, capsys):
    from flows.cli import main
    from storage import Store

    root = str(tmp_path / "empty")
    Store.open(root).refresh_views()
    code = main(["search", "--store", root, "little dog"])
    err = capsys.readouterr().err
    assert code == 1 and "no descriptions to search yet" in err and "pixelrefer describe" in err


def test_a_store_described_but_not_indexed_says_to_run_index(tmp_path, capsys):
    from flows.cli import main

    root = str(tmp_path / "store")
    build_search_store(root).close()
    code = main(["search", "--store", root, "little dog"])
    err = capsys.readouterr().err
    assert code == 1 and "not indexed for search: run pixelrefer index --store" in err


def test_search_starts_without_prefect_torch_or_the_catalog(indexed):
    code = ("import sys; from flows.cli import main; rc = main(['search', '--store', sys.argv[1], 'little dog', "
            "'--limit', '1']); print(rc, sorted(m for m in ('prefect', 'torch', 'sqlalchemy', 'transformers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, indexed], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr
