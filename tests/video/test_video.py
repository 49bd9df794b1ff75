"""Video reading: probe, timestamps, sampling, chunked iteration, both backends, and typed errors."""

from __future__ import annotations

import gc
import hashlib
import weakref

import numpy as np
import pytest

from pixelrefer_core.errors import EmptyVideoError, NotAVideoError, VideoNotFoundError
from pixelrefer_core.video import (
    fingerprint,
    iter_frame_chunks,
    iter_frames,
    probe,
    read_frames,
    sample_indices,
)


def test_probe_and_fingerprint(clip):
    path, frames = clip
    info = probe(path)
    assert (info.num_frames, info.width, info.height) == (60, 320, 240)
    assert info.fps == pytest.approx(10.0)
    assert info.duration_s == pytest.approx(6.0)
    assert (info.backend, info.decoded_frames, info.partial_reason, info.partial) == ("decord", 60, None, False)
    assert fingerprint(path) == hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_sampling_timestamps_and_chunks(clip):
    path, frames = clip
    info = probe(path)
    assert sample_indices(info, 2.5) == list(range(0, 60, 4))
    assert sample_indices(info, None) == list(range(60))
    chunks = list(iter_frame_chunks(path, target_fps=2.5, chunk_size=4))
    assert [len(c) for c in chunks] == [4, 4, 4, 3]
    flat = [x for c in chunks for x in c]
    assert [i for i, _, _ in flat] == list(range(0, 60, 4))
    assert [t for _, t, _ in flat] == pytest.approx([i / 10.0 for i in range(0, 60, 4)], abs=1e-6)
    idx, _, rgb = flat[3]
    assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - frames[idx]).mean() < 4  # lossy codec, same picture
    got, ts = read_frames(path, [30, 5])
    assert ts == pytest.approx([3.0, 0.5]) and np.abs(got[0].astype(int) - frames[30]).mean() < 4


def test_both_backends_read_the_same_frames_and_times(clip):
    path, _ = clip
    assert probe(path, backend="pyav").backend == "pyav"
    a = list(iter_frames(path, 2.5, chunk_size=4, backend="decord"))
    b = list(iter_frames(path, 2.5, chunk_size=4, backend="pyav"))
    assert [(i, t) for i, t, _ in a] == [(i, t) for i, t, _ in b]
    assert all(np.array_equal(x, y) for (_, _, x), (_, _, y) in zip(a, b, strict=True))
    got_a, ts_a = read_frames(path, [41, 3, 41], backend="decord")
    got_b, ts_b = read_frames(path, [41, 3, 41], backend="pyav")
    assert ts_a == ts_b == pytest.approx([4.1, 0.3, 4.1])
    assert all(np.array_equal(x, y) for x, y in zip(got_a, got_b, strict=True))
    with pytest.raises(IndexError, match="60"):
        read_frames(path, [60], backend="pyav")


def test_a_16x16_video_decodes_through_the_fallback(tiny_clip):
    path, frames = tiny_clip
    info = probe(path)
    assert (info.backend, info.num_frames, info.width, info.height, info.partial) == ("pyav", 30, 16, 16, False)
    got = list(iter_frames(path, chunk_size=7))
    assert [i for i, _, _ in got] == list(range(30))
    assert [t for _, t, _ in got] == pytest.approx([i / 10.0 for i in range(30)])
    assert all(rgb.shape == (16, 16, 3) for _, _, rgb in got)
    assert np.abs(got[12][2].astype(int) - frames[12]).mean() < 12  # 16x16 chroma is coarse, same picture


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_iteration_holds_one_chunk(clip, backend):
    path, _ = clip
    refs: list = []
    worst = 0
    for chunk in iter_frame_chunks(path, chunk_size=5, backend=backend):
        refs += [weakref.ref(rgb) for _, _, rgb in chunk]
        del chunk
        gc.collect()
        worst = max(worst, sum(r() is not None for r in refs))
    assert len(refs) == 60 and worst <= 5


def test_missing_empty_and_not_a_video(tmp_path):
    with pytest.raises(VideoNotFoundError) as e:
        probe(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(e.value)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyVideoError):
        probe(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(NotAVideoError) as e:
        list(iter_frames(junk))
    assert e.value.path == str(junk)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 200)
    with pytest.raises(NotAVideoError, match="not a recognised video container"):
        probe(text)
