"""SAM 3 end to end with the tiny random model saved in the released format: concept detection on
keyframes, propagation by the SAM 3 tracker between them, labels on tracks, bounded memory."""

from __future__ import annotations

import math
import weakref

import numpy as np
import pytest

from pixelrefer_core.errors import ModelLoadError, PromptError
from pixelrefer_core.masks import decode_rle
from pixelrefer_core.synthetic import SyntheticObject, render_scene, write_video
from pixelrefer_core.tracking import TrackerConfig, build_segmenter, segmenter_id_for, track_file, track_video

CONCEPTS = ["car", "person"]
# Random weights score every query about 0.25: a threshold of 0 keeps the detections (de-duplicated).
OPTIONS = dict(concepts=CONCEPTS, default_threshold=0.0, whole_frame_frac=1.0)
CFG = TrackerConfig(sample_fps=None, keyframe_every=3, chunk_size=4, max_area_frac=1.0, min_track_frames=2)


@pytest.fixture(scope="module")
def sam3_dir(tmp_path_factory):
    from pixelrefer_core.tracking.sam3_tiny import save_tiny_sam3

    return save_tiny_sam3(str(tmp_path_factory.mktemp("sam3") / "tiny-sam3"))


@pytest.fixture(scope="module")
def sam3(sam3_dir):
    return build_segmenter("sam3", sam3_dir, **OPTIONS)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    objs = [SyntheticObject("red", "rect", 30, (40, 60), (6, 0)), SyntheticObject("blue", "circle", 30, (120, 60), (-6, 0))]
    frames, _ = render_scene(objs, 7, width=160, height=120, seed=2)
    path = tmp_path_factory.mktemp("clip") / "two.mp4"
    write_video(path, frames, fps=10.0)
    return str(path)


def test_the_tiny_checkpoint_has_the_released_layout(sam3_dir):
    import json
    import os

    config = json.load(open(os.path.join(sam3_dir, "config.json")))
    assert config["model_type"] == "sam3_video" and {"detector_config", "tracker_config"} <= set(config)
    from safetensors import safe_open

    with safe_open(os.path.join(sam3_dir, "model.safetensors"), "pt") as fh:
        prefixes = {k.split(".")[0] for k in fh.keys()}
    assert prefixes == {"detector_model", "tracker_model", "tracker_neck"}
    assert {"tokenizer.json", "processor_config.json"} <= set(os.listdir(sam3_dir))


def test_tiny_sam3_tracks_labelled_objects_through_propagation(sam3, sam3_dir, clip):
    tracks = track_file(clip, sam3, CFG)
    assert tracks, "random SAM 3 with threshold 0 must detect something"
    assert {t.label for t in tracks} <= set(CONCEPTS) and all(t.label is not None for t in tracks)
    assert all(0.0 < t.label_score < 1.0 for t in tracks)
    keyframes = {0, 3, 6}
    propagated = [(t, r) for t in tracks for r in t.frames if r.frame_idx not in keyframes]
    assert propagated, "no frame between keyframes was propagated"
    for _, r in propagated:
        m = decode_rle(r.mask_rle, r.mask_h, r.mask_w)
        assert (r.mask_h, r.mask_w) == (120, 160) and m.any() and r.area == m.sum()
        assert r.score == pytest.approx(1 / (1 + math.exp(-2.0)), abs=0.01)  # sigmoid of the tracker's object score
    again = track_file(clip, build_segmenter("sam3", sam3_dir, **OPTIONS), CFG)  # a fresh load: same result
    assert [(t.object_id, t.label, [(r.frame_idx, r.mask_rle) for r in t.frames]) for t in again] == [
        (t.object_id, t.label, [(r.frame_idx, r.mask_rle) for r in t.frames]) for t in tracks]


def test_detections_carry_their_concept_and_respect_thresholds(sam3_dir, sam3):
    frame = render_scene([SyntheticObject("red", "rect", 30, (40, 60))], 1, width=160, height=120)[0][0]
    dets = sam3.discover_labelled(frame)
    assert dets and {d.label for d in dets} == set(CONCEPTS)
    assert all(d.mask.shape == (120, 160) and d.mask.dtype == bool and d.mask.any() for d in dets)
    strict = build_segmenter("sam3", sam3_dir, concepts=CONCEPTS, thresholds={"car": 1.0}, default_threshold=0.0)
    assert {d.label for d in strict.discover_labelled(frame)} == {"person"}
    capped = build_segmenter("sam3", sam3_dir, concepts=CONCEPTS, default_threshold=0.0, whole_frame_frac=1.0,
                             max_detections=1).discover_labelled(frame)
    best = {c: max(d.score for d in dets if d.label == c) for c in CONCEPTS}
    assert sorted((d.label, d.score) for d in capped) == sorted(best.items())  # the best one of each concept
    batch = sam3.discover_labelled_batch([frame, frame[::-1].copy(), frame])
    assert [[(d.label, round(d.score, 5)) for d in b] for b in (batch[0], batch[2])] == 2 * [
        [(d.label, round(d.score, 5)) for d in dets]]


def test_sam3_memory_is_bounded_by_the_chunk(sam3):
    frames, _ = render_scene([SyntheticObject("red", "rect", 30, (40, 60), (4, 0))], 10, width=160, height=120)

    class Frame(np.ndarray):
        pass

    alive: list = []

    def stream():
        for i, f in enumerate(frames):
            v = f.view(Frame)
            alive.append(weakref.ref(v))
            live = sum(r() is not None for r in alive)
            assert live <= CFG.chunk_size + 1, f"{live} frames alive at frame {i}"
            yield i, i / 10.0, v

    assert track_video(stream(), sam3, CFG)


def test_segmenter_id_names_weights_concepts_and_thresholds(sam3, sam3_dir):
    assert sam3.segmenter_id == segmenter_id_for("sam3", sam3_dir, **OPTIONS)
    assert segmenter_id_for("sam3", "facebook/sam3", concepts=["person", "car"]) == segmenter_id_for(
        "sam3", "facebook/sam3", concepts=["Car ", "person"])  # order and spelling of the list do not matter
    ids = {segmenter_id_for("sam3", "facebook/sam3", concepts=c, thresholds=t)
           for c, t in [(["car"], None), (["car", "dog"], None), (["car"], {"car": 0.3}), (["car"], {"car": 0.31})]}
    assert len(ids) == 4
    assert segmenter_id_for("sam3", "facebook/sam3", concepts=["car"], propagator="sam2", sam2_checkpoint="x") != \
        segmenter_id_for("sam3", "facebook/sam3", concepts=["car"])


def test_bad_sam3_settings_are_clear_errors(sam3_dir, tmp_path):
    with pytest.raises(PromptError, match="no concepts"):
        build_segmenter("sam3", sam3_dir, concepts=[])
    with pytest.raises(PromptError, match="concept 2.*blank"):
        build_segmenter("sam3", sam3_dir, concepts=["car", "  "])
    with pytest.raises(PromptError, match="threshold"):
        build_segmenter("sam3", sam3_dir, concepts=["car"], thresholds={"car": 1.5})
    with pytest.raises(ModelLoadError, match="nowhere.*not a folder"):
        build_segmenter("sam3", str(tmp_path / "nowhere"), concepts=["car"])
    with pytest.raises(ModelLoadError, match="could not load SAM 3 from 'facebook/sam3'"):  # offline here
        build_segmenter("sam3", "facebook/sam3", concepts=["car"])
    with pytest.raises(ModelLoadError, match="needs a checkpoint"):
        build_segmenter("sam3", concepts=["car"])
    with pytest.raises(ValueError, match="unknown option"):
        build_segmenter("motion", concepts=["car"])
    with pytest.raises(ValueError, match="propagator"):
        segmenter_id_for("sam3", sam3_dir, concepts=["car"], propagator="sam9")


def test_tiny_profile_with_sam2_propagation_and_automatic_masks(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELREFER_CACHE", str(tmp_path))
    seg = build_segmenter("sam3", profile="tiny", propagator="sam2", discover="both", **OPTIONS)
    assert seg.segmenter_id == segmenter_id_for("sam3", profile="tiny", propagator="sam2", discover="both", **OPTIONS)
    frames, truth = render_scene([SyntheticObject("red", "rect", 30, (40, 60), (4, 0))], 3, width=160, height=120)
    dets = seg.discover_labelled(frames[0])
    assert {d.label for d in dets} >= {None} and {d.label for d in dets} - {None} <= set(CONCEPTS)
    got = seg.propagate_scored(frames, {4: truth[0][0]})
    want = seg.sam2.propagate_scored(frames, {4: truth[0][0]})
    assert [{k: (m.tobytes(), s) for k, (m, s) in d.items()} for d in got] == [
        {k: (m.tobytes(), s) for k, (m, s) in d.items()} for d in want]
