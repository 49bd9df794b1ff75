"""The GPU-minded paths, checked on CPU: batched SAM 2 propagation gives the masks of the per-object
path, frames prepared ahead on a thread give the tracks of frames prepared on the spot, and the
prefetcher stays bounded and passes errors on."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pixelrefer_core.errors import NotAVideoError
from pixelrefer_core.synthetic import SyntheticObject, render_scene, write_video
from pixelrefer_core.tracking import TrackerConfig, build_segmenter, prefetched_frames, track_file
from pixelrefer_core.tracking.device_frames import DeviceFrameCache, Prefetcher, frames_to_tensor


def _scene(n=4, w=320, h=240):
    objs = [SyntheticObject("red", "rect", 40, (60, 80), (5, 0)), SyntheticObject("blue", "circle", 40, (250, 120), (-5, 0)),
            SyntheticObject("green", "rect", 30, (160, 200), (0, -4))]
    return render_scene(objs, n, width=w, height=h, seed=0)


def test_batched_sam2_propagation_gives_the_per_object_masks():
    frames, truth = _scene(3)
    seeds = {7: truth[0][0], 3: truth[0][1]}  # ids in no particular order
    batched = build_segmenter("sam2", profile="tiny", whole_frame_frac=1.0).propagate_scored(frames, seeds)
    plain = build_segmenter("sam2", profile="tiny", whole_frame_frac=1.0, batch_objects=False).propagate_scored(frames, seeds)
    assert all(len(d) == 2 for d in plain[1:]), "the random tiny model must keep its objects for the check to mean anything"
    for a, b in zip(batched, plain, strict=True):
        assert sorted(a) == sorted(b)
        for k in a:
            assert np.array_equal(a[k][0], b[k][0]) and a[k][1] == pytest.approx(b[k][1], abs=1e-6)


def test_frames_are_resized_the_same_in_a_batch_and_alone():
    frames, _ = _scene(3, 160, 120)
    batch = frames_to_tensor(frames, 64, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2), "cpu")
    import torch

    alone = torch.cat([frames_to_tensor([f], 64, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2), "cpu") for f in frames])
    assert batch.shape == (3, 3, 64, 64) and torch.equal(batch, alone)
    cache = DeviceFrameCache(64, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2), "cpu", capacity=2)
    cache.put(frames[:2])
    assert torch.equal(cache.tensor(frames), batch) and (cache.hits, cache.misses) == (2, 1)
    assert torch.equal(cache.tensor([frames[0].copy()]), batch[:1]) and cache.misses == 2  # equal pixels, not the same frame


def test_prefetched_tracking_equals_tracking_on_the_spot(tmp_path):
    from pixelrefer_core.tracking.sam3_tiny import save_tiny_sam3

    frames, _ = _scene(9, 160, 120)
    path = str(tmp_path / "clip.mp4")
    write_video(path, frames, fps=10.0)
    ckpt = save_tiny_sam3(str(tmp_path / "sam3"))
    cfg = TrackerConfig(sample_fps=None, keyframe_every=3, chunk_size=4, max_area_frac=1.0)
    options = dict(concepts=["car"], default_threshold=0.0, whole_frame_frac=1.0)
    ahead = build_segmenter("sam3", ckpt, **options)
    got = track_file(path, ahead, cfg, prefetch=True)
    want = track_file(path, build_segmenter("sam3", ckpt, prefetch=False, **options), cfg)
    assert ahead.frames.hits > 0  # frames were on the device before the tracker asked for them
    assert [(t.object_id, [(r.frame_idx, r.mask_rle, r.score) for r in t.frames]) for t in got] == [
        (t.object_id, [(r.frame_idx, r.mask_rle, r.score) for r in t.frames]) for t in want]


def test_prefetched_frames_pass_reader_errors_on(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(NotAVideoError):
        list(prefetched_frames(str(junk), TrackerConfig(sample_fps=None)))


def test_prefetcher_is_bounded_and_ordered():
    made: list[int] = []

    def items():
        for i in range(20):
            made.append(i)
            yield i

    with Prefetcher(items(), lambda i: i * i, depth=2) as ahead:
        it = iter(ahead)
        assert next(it) == (0, 0)
        time.sleep(0.3)  # the worker may run ahead only as far as the queue allows
        assert len(made) <= 1 + 2 + 1
        assert list(it) == [(i, i * i) for i in range(1, 20)]


def test_prefetcher_raises_the_workers_error_and_stops():
    def prepare(i):
        if i == 3:
            raise ValueError("bad item 3")
        return i

    with pytest.raises(ValueError, match="bad item 3"):
        with Prefetcher(iter(range(10)), prepare) as ahead:
            assert [i for i, _ in ahead] == [0, 1, 2]
    before = threading.active_count()
    p = Prefetcher(iter(range(1000)), lambda i: i, depth=1)
    p.close()
    assert threading.active_count() <= before


def test_a_chunk_starting_where_the_last_ended_reuses_its_image_features():
    frames, truth = _scene(5)
    seeds = {1: truth[0][0]}
    seg = build_segmenter("sam2", profile="tiny", whole_frame_frac=1.0)
    encoder = seg.predictor.image_encoder
    calls = []
    forward = encoder.forward
    encoder.forward = lambda *a, **k: (calls.append(1), forward(*a, **k))[1]
    first = seg.propagate_scored(frames[:3], seeds)
    before = len(calls)
    second = seg.propagate_scored(frames[2:], {1: first[-1][1][0]})
    assert before == 3 and len(calls) - before == 2  # frame 2 was not encoded again
    fresh = build_segmenter("sam2", profile="tiny", whole_frame_frac=1.0).propagate_scored(frames[2:], {1: first[-1][1][0]})
    assert [{k: m.tobytes() for k, (m, _) in d.items()} for d in second] == [
        {k: m.tobytes() for k, (m, _) in d.items()} for d in fresh]


def test_the_frame_cache_lets_go_of_frames_nobody_holds():
    import gc

    frames, _ = _scene(4, 160, 120)
    cache = DeviceFrameCache(32, (0.5,) * 3, (0.5,) * 3, "cpu", capacity=64)
    held = [f.copy() for f in frames]
    cache.put(held)
    assert len(cache) == 4
    del held[:2]
    gc.collect()
    assert len(cache) == 2
    cache.tensor(held)
    assert cache.hits == 2
