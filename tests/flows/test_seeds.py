"""Seed files: users start tracks from their own boxes/points at given times."""

from __future__ import annotations

import pytest

from flows.seeds import load_seeds, parse_time, seeds_for_video
from pixelrefer_core.errors import PromptError


@pytest.mark.parametrize("value, seconds", [(12, 12.0), ("12.5", 12.5), ("00:12", 12.0), ("1:02:03.5", 3723.5)])
def test_times(value, seconds):
    assert parse_time(value) == seconds


@pytest.mark.parametrize(
    "text, where, why",
    [
        ("- video: a.mp4\n  at: '0:1'\n  box: [1, 2, 3]\n", "line 1", "box must be a list of 4 numbers"),
        ("- video: a.mp4\n  box: [0, 0, 5, 5]\n", "line 1", "exactly one of 'at'"),
        ("- video: a.mp4\n  at: 1\n  box: [0, 0, 5, 5]\n- video: b.mp4\n  at: 'x:1'\n  box: [0, 0, 5, 5]\n",
         "line 4 (entry 1)", "at:"),
        ("- video: a.mp4\n  frame: 3\n  points: [[1, 2]]\n  labels: [0]\n", "line 1", "at least one 1"),
        ("- video: a.mp4\n  at: 1\n  box: [5, 5, 1, 1]\n", "line 1", "x1 > x0"),
        ("- video: a.mp4\n  at: 1\n  box: [0, 0, 5, 5]\n  colour: red\n", "line 1", "unknown field"),
    ],
)
def test_invalid_seed_files_name_the_line_and_reason(tmp_path, text, where, why):
    path = tmp_path / "seeds.yaml"
    path.write_text(text)
    with pytest.raises(PromptError) as err:
        load_seeds(str(path))
    assert str(path) in str(err.value) and where in str(err.value) and why in str(err.value)


def test_seed_patterns_match_paths_tails_and_file_names(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('[{"video": "cam3/*.mp4", "at": 1, "box": [0, 0, 4, 4]},'
                    ' {"video": "gate.mp4", "frame": 2, "points": [[1, 1]]}]')
    seeds = load_seeds(str(path))
    assert seeds_for_video(seeds, "/data/cam3/evening.mp4") == [seeds[0]]
    assert seeds_for_video(seeds, "s3://bucket/north/gate.mp4") == [seeds[1]]
    assert seeds_for_video(seeds, "/data/cam4/gate2.mp4") == []


def test_a_seeded_video_gets_a_prompt_track_from_the_seed_time(clean_run, archive, tmp_path, tiny_settings, snapshot):
    from flows.archive import process_archive

    # b/up.mp4 (8 fps): a green 20 px square starting at (70, 95) and moving up 3 px per frame;
    # at 1 s (frame 8) it is centred near (70, 71).
    seeds = tmp_path / "seeds.yaml"
    seeds.write_text("- video: up.mp4\n  at: '0:01'\n  box: [56, 57, 84, 85]\n  id: 50\n")
    store = str(tmp_path / "store")
    process_archive(tiny_settings(store, archive, seeds_file=str(seeds)))
    tables = snapshot(store)
    clean = clean_run[2]
    up_id = next(v["video_id"] for v in tables["videos"] if v["uri"].endswith("up.mp4"))
    seeded = [o for o in tables["objects"] if o["object_id"] == 50]
    assert len(seeded) == 1 and seeded[0]["video_id"] == up_id and seeded[0]["discovered_by"] == "prompt"
    # visible at the seed time (the backward pass may extend it a little earlier), on the green square
    assert seeded[0]["t_start"] <= 1.0 <= seeded[0]["t_end"] and seeded[0]["color"] == "green"
    near_seed = [f for f in tables["object_frames"] if f["object_id"] == 50 and 8 <= f["frame_idx"] <= 9]
    assert near_seed and 56 <= near_seed[0]["x0"] and near_seed[0]["x1"] <= 84
    # seeding the square that motion discovery also finds does not duplicate it
    assert sum(o["video_id"] == up_id for o in tables["objects"]) == sum(o["video_id"] == up_id for o in clean["objects"])
    # the seeded video is tracked under its own key; the other video keeps the unseeded key
    clean_keys = {o["video_id"]: o["track_key"] for o in clean["objects"]}
    keys = {o["video_id"]: o["track_key"] for o in tables["objects"]}
    assert keys[up_id] != clean_keys[up_id]
    assert all(keys[v] == clean_keys[v] for v in keys if v != up_id)
