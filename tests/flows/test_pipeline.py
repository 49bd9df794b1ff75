"""The archive and describe flows end to end on a tiny generated archive (tiny model, motion segmenter)."""

from __future__ import annotations

import shutil

import pytest

from storage import Store


def _stage_calls_fail(monkeypatch):
    """Make every expensive stage call an error: a run that needs none of them must still pass."""
    import flows.runtime
    import flows.stages.ingest
    import flows.stages.track

    def boom(*a, **k):
        raise AssertionError("work was done although every unit is done")

    monkeypatch.setattr(flows.stages.ingest, "probe", boom)
    monkeypatch.setattr(flows.stages.track, "run_tracker", boom)
    monkeypatch.setattr(flows.runtime, "get_engine", boom)


def test_run_fills_tables_with_consistent_ids_and_records_the_corrupt_file(clean_run, archive):
    store_root, summary, snap = clean_run
    assert summary.videos_found == 3 and summary.videos_done == 2 and summary.videos_failed == 1
    (failure,) = summary.failures
    who, stage, reason = failure.who, failure.stage, failure.reason
    assert who.endswith("corrupt.mp4") and stage == "ingest" and "NotAVideoError" in reason

    videos = {v["video_id"]: v for v in snap["videos"]}
    assert len(videos) == 2
    objects = snap["objects"]
    assert objects and {o["video_id"] for o in objects} == set(videos)
    # every object has a timeline whose timestamps are frame_idx / fps of its video
    frames = snap["object_frames"]
    assert {(f["video_id"], f["object_id"]) for f in frames} == {(o["video_id"], o["object_id"]) for o in objects}
    for f in frames:
        assert f["t"] == pytest.approx(f["frame_idx"] / videos[f["video_id"]]["fps"], abs=1e-3)
    for o in objects:
        assert o["color"] and o["direction_deg"] is not None
    # the red square of a/left.mp4 moves left
    left = next(v for v in videos.values() if v["uri"].endswith("a/left.mp4"))
    red = [o for o in objects if o["video_id"] == left["video_id"] and o["color"] == "red"]
    assert red and 135 <= red[0]["direction_deg"] <= 225
    # one caption per object, with the default prompt, about tracked objects only
    desc = snap["descriptions"]
    assert sorted((d["video_id"], d["object_ids"][0]) for d in desc) == sorted(
        (o["video_id"], o["object_id"]) for o in objects)
    assert {d["prompt_id"] for d in desc} == {"caption-short"}
    assert all(d["n_tokens"] <= 4 and d["frames_used"] for d in desc)

    store = Store.open(store_root, create=False)
    (failure,) = store.catalog.failures()
    assert failure.stage == "ingest" and not failure.retryable and "corrupt.mp4" in failure.uri


def test_rerun_does_no_work_and_adds_no_rows(clean_run, archive, tmp_path, monkeypatch, tiny_settings, snapshot):
    from flows.archive import process_archive

    store_root, _, before = clean_run
    copy = str(tmp_path / "store")
    shutil.copytree(store_root, copy)
    _stage_calls_fail(monkeypatch)
    summary = process_archive(tiny_settings(copy, archive))
    assert summary.videos_done == 0 and summary.videos_skipped == 2
    assert summary.descriptions_written == 0 and summary.videos_failed == 1
    assert snapshot(copy) == before


def test_describe_failure_then_rerun_gives_the_same_tables(clean_run, archive, tmp_path, monkeypatch, tiny_settings, snapshot):
    """A run whose describe stage crashes leaves retryable failures; the next run finishes the job."""
    import flows.runtime
    from flows.archive import process_archive

    _, _, reference = clean_run
    store = str(tmp_path / "store")

    class Crash(RuntimeError):
        pass

    def crashing_engine(*a, **k):
        raise Crash("simulated crash in the describe stage")

    with monkeypatch.context() as m:
        m.setattr(flows.runtime, "get_engine", crashing_engine)
        first = process_archive(tiny_settings(store, archive))
    assert any(f.stage == "describe" and "simulated crash" in f.reason for f in first.failures)
    assert snapshot(store)["descriptions"] == []
    catalog = Store.open(store, create=False).catalog
    assert all(u.retryable for u in catalog.failures("describe"))

    second = process_archive(tiny_settings(store, archive))
    assert second.descriptions_written == len(reference["descriptions"])
    assert snapshot(store) == reference


def test_describe_only_adds_descriptions_and_leaves_timelines_unchanged(clean_run, tmp_path, monkeypatch, tiny_settings, snapshot):
    import flows.stages.track
    from flows.describe import describe_objects

    store_root, _, before = clean_run
    copy = str(tmp_path / "store")
    shutil.copytree(store_root, copy)
    prompts = tmp_path / "p.yaml"
    prompts.write_text(
        "- id: what\n  task: qa\n  text: What is <object> doing?\n"
        "- id: pair\n  task: qa\n  text: Are <object0> and <object1> close?\n"
    )
    monkeypatch.setattr(flows.stages.track, "run_tracker", lambda *a, **k: pytest.fail("tracking ran"))
    summary = describe_objects(tiny_settings(copy, prompts_file=str(prompts), where="color = 'red'"))
    after = snapshot(copy)
    for table in ("videos", "objects", "object_frames"):
        assert after[table] == before[table]
    new = [d for d in after["descriptions"] if d not in before["descriptions"]]
    assert summary.descriptions_written == len(new) > 0
    red = {(o["video_id"], o["object_id"]) for o in before["objects"] if o["color"] == "red"}
    assert {(d["video_id"], d["object_ids"][0]) for d in new if d["prompt_id"] == "what"} == red
    # a second identical describe run does nothing
    again = describe_objects(tiny_settings(copy, prompts_file=str(prompts), where="color = 'red'"))
    assert again.descriptions_written == 0 and snapshot(copy) == after


def test_status_reports_runs_counts_and_failures(clean_run):
    from flows.commands.status import status_text

    text = status_text(Store.open(clean_run[0], create=False))
    assert "archive" in text and "ingest    done 2, failed 1" in text
    assert "track     done 2" in text and "corrupt.mp4" in text and "not retried" in text


HOSTILE_WHERE = [
    "color = 'red'); COPY (SELECT 1) TO '/tmp/x.csv'; SELECT (1",
    "no_such_column = 1",
    "1=0) UNION ALL SELECT video_id, track_key, 99, uri FROM videos --",
    "color IN (SELECT content FROM read_text('/etc/passwd'))",
    "color = 'red' -- and the rest is swallowed",
]


@pytest.mark.parametrize("where", HOSTILE_WHERE)
def test_describe_selection_refuses_writes_and_bad_predicates(clean_run, where):
    from flows.describe import select_targets
    from storage import StoreError

    with pytest.raises(StoreError, match="--where"):
        select_targets(Store.open(clean_run[0], create=False), where, cache_dir=str(clean_run[0]))


@pytest.mark.parametrize("where", HOSTILE_WHERE[2:4])
def test_describe_cli_refuses_a_hostile_where_before_recording_anything(clean_run, tmp_path, capsys, where):
    from flows.cli import main

    copy = tmp_path / "store"
    shutil.copytree(clean_run[0], copy)
    before = Store.open(str(copy), create=False).catalog
    runs, units = len(before.runs()), len(before.units())
    assert main(["describe", "--store", str(copy), "--profile", "tiny", "--where", where]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pixelrefer describe:") and "--where" in err and "Traceback" not in err
    after = Store.open(str(copy), create=False).catalog
    assert len(after.runs()) == runs and len(after.units()) == units


def test_unchanged_files_are_not_hashed_again_and_a_changed_one_is(clean_run, archive, tmp_path, monkeypatch,
                                                                   tiny_settings):
    import os
    import time

    import flows.plan
    from flows.plan import load_run_prompts, plan_archive

    store_root = str(tmp_path / "store")
    shutil.copytree(clean_run[0], store_root)
    copy = tmp_path / "archive"
    shutil.copytree(archive, copy)
    store = Store.open(store_root, create=False)
    # the copies have other paths: the first plan hashes them, and a run records them
    from flows.archive import process_archive

    process_archive(tiny_settings(store_root, str(copy)))
    hashed = []
    real = flows.plan.fingerprint
    monkeypatch.setattr(flows.plan, "fingerprint", lambda path: hashed.append(path) or real(path))
    settings = tiny_settings(store_root, str(copy))
    assert not plan_archive(settings, store, load_run_prompts(settings)).work_left
    assert hashed == []  # a run with nothing to do reads no video's bytes
    time.sleep(0.01)
    left = copy / "a" / "left.mp4"
    left.write_bytes(left.read_bytes()[:-1] + b"\x00")  # same size, new bytes, new mtime
    os.utime(left)
    plan = plan_archive(settings, store, load_run_prompts(settings))
    assert hashed == [str(left)] and [s.uri for s, _ in plan.ingest.todo] == [str(left)]
