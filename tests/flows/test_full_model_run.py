"""The full PixelRefer through the same pipeline: chosen by --model, its frames chosen by the describe stage."""

from __future__ import annotations

import pytest

from storage import Store
from storage.query import run_query


@pytest.fixture(scope="module")
def full_checkpoint(tmp_path_factory) -> str:
    from pixelrefer_core.model.tiny import save_tiny_checkpoint

    return save_tiny_checkpoint(str(tmp_path_factory.mktemp("full") / "pixelrefer-full-tiny"), model_kind="full")


def test_a_full_model_checkpoint_describes_tracked_objects(clean_run, archive, tmp_path, tiny_settings,
                                                           full_checkpoint, monkeypatch):
    import shutil

    import flows.stages.track
    from flows.archive import process_archive

    monkeypatch.setattr(flows.stages.track, "run_tracker", lambda *a, **k: pytest.fail("tracked again"))
    store = str(tmp_path / "store")
    shutil.copytree(clean_run[0], store)  # tracked and described by the Lite tiny model already
    prompts = tmp_path / "p.yaml"
    prompts.write_text("- id: what\n  task: qa\n  text: What is <object> doing?\n"
                       "- id: pair\n  task: qa\n  text: Are <object0> and <object1> close?\n")
    settings = tiny_settings(store, archive, profile=None, model=full_checkpoint, prompts_file=str(prompts),
                             frames_per_object=3)
    summary = process_archive(settings)
    assert summary.videos_done == 2 and summary.descriptions_written > 0
    db = Store.open(store, create=False).db_path
    _, rows = run_query(db, "SELECT DISTINCT model_id FROM descriptions WHERE prompt_id IN ('what', 'pair')")
    assert [r[0].split("@")[0] for r in rows] == ["pixelrefer-full-tiny"]
    _, rows = run_query(db, "SELECT d.object_ids, d.frames_used, o.first_frame, o.last_frame FROM descriptions d "
                            "JOIN latest_objects o ON o.video_id = d.video_id AND o.object_id = d.object_ids[1] "
                            "WHERE d.prompt_id = 'what'")
    assert rows
    for object_ids, frames_used, first, last in rows:
        assert len(object_ids) == 1 and all(first <= f <= last for f in frames_used)
        assert len(frames_used) >= min(3, last - first + 1)  # the LLM's frames spread over the object's span
    _, keys = run_query(db, "SELECT count(DISTINCT describe_key) FROM descriptions")
    again = process_archive(settings)
    assert again.descriptions_written == 0 and again.describe_units_skipped == summary.describe_units_done
    _, keys_after = run_query(db, "SELECT count(DISTINCT describe_key) FROM descriptions")
    assert keys_after == keys
