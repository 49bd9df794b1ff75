"""Named concepts end to end: the tiny SAM 3 finds labelled objects, prompts can name the label, a re-run
does no work; bad concept lists are refused before any work."""

from __future__ import annotations

import pytest

from flows.demo_archive import TEST_SCENES, make_archive
from storage import Store
from storage.query import run_query


@pytest.fixture(scope="module")
def short_archive(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("concepts")
    make_archive(str(folder), TEST_SCENES[1:], corrupt=False)  # b/up.mp4: 3 s, one green square
    return str(folder)


def test_concepts_give_labelled_objects_and_a_rerun_does_no_work(short_archive, tmp_path, tiny_settings,
                                                                 prefect_server, monkeypatch):
    import flows.stages.track
    from flows.archive import process_archive
    from flows.concepts import ConceptSetting

    # random weights score every detection about 0.25: threshold 0 keeps them
    concepts = (ConceptSetting(name="Square", threshold=0.0), ConceptSetting(name="dog", threshold=0.0))
    settings = tiny_settings(str(tmp_path / "store"), short_archive, concepts=concepts, sample_fps=2.0, segmenter=None)
    assert settings.resolved_segmenter == "sam3"
    first = process_archive(settings)
    assert first.objects > 0
    store = Store.open(settings.store, create=False)
    _, rows = run_query(store.db_path, "SELECT DISTINCT label FROM latest_objects")
    assert {r[0] for r in rows} <= {"square", "dog"} and rows  # normalised concept names
    _, rows = run_query(store.db_path, "SELECT count(*) FROM latest_objects WHERE label_score > 0")
    assert rows[0][0] == first.objects
    monkeypatch.setattr(flows.stages.track, "run_tracker", lambda *a, **k: pytest.fail("tracked again"))
    again = process_archive(settings)
    assert again.videos_skipped == 1 and again.objects == first.objects


def test_label_placeholders_take_each_objects_label(tmp_path):
    import numpy as np

    from flows.stages.describe_items import load_labels, with_labels
    from flows.stages.track import tracks_to_tables
    from pixelrefer_core.masks import encode_rle
    from pixelrefer_core.tracking import FrameRecord, ObjectTrack

    mask = np.zeros((8, 8), bool)
    mask[2:4, 2:4] = True
    frame = FrameRecord(0, 0.0, (2, 2, 4, 4), 4, 0.9, encode_rle(mask), 8, 8)
    tracks = [ObjectTrack(1, "auto", [frame, frame], label="car", label_score=0.8),
              ObjectTrack(2, "auto", [frame, frame])]
    store = Store.open(str(tmp_path / "s"))
    objects, _ = tracks_to_tables("v" * 64, "t-1", tracks)
    store.write_unit("objects", "v" * 64, "t-1", objects)
    labels = load_labels(store, "v" * 64, "t-1")
    assert labels == {1: "car", 2: None}
    assert with_labels("What colour is this {label}?", [labels[1]]) == "What colour is this car?"
    assert with_labels("What colour is this {label}?", [labels[2]]) == "What colour is this object?"
    assert with_labels("Is {label0} near {label1}?", [labels[1], labels[2]]) == "Is car near object?"


@pytest.mark.parametrize(
    "args, says",
    [
        (["--concepts", " , car"], "entry 1 is empty"),
        (["--concepts", "car, Car"], "duplicate"),
        (["--concepts", "car", "--segmenter", "motion"], "needs SAM 3"),
        (["--concepts-file", "BAD"], "line 2"),
        (["--concepts-file", "THRESHOLD"], "threshold"),
    ],
    ids=["blank", "duplicate", "motion", "syntax-error", "threshold-out-of-range"],
)
def test_bad_concepts_are_refused_before_any_work(short_archive, tmp_path, capsys, args, says):
    from flows.cli import main

    files = {"BAD": "- car\n- name: [dog\n", "THRESHOLD": "- name: car\n  threshold: 1.5\n"}
    args = [a if a not in files else str(tmp_path / f"{a}.yaml") for a in args]
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    store = tmp_path / "store"
    assert main(["run", short_archive, "--store", str(store), "--profile", "tiny", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pixelrefer run:") and says in err and "Traceback" not in err
    assert not (store / "videos").exists()
