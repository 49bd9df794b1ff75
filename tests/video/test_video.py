"""Video reading: probe, timestamps, sampling, chunked iteration and typed errors on broken files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pixelrefer_core.errors import EmptyVideoError, NotAVideoError, TruncatedVideoError, VideoNotFoundError
from pixelrefer_core.synthetic import SyntheticObject, render_scene, write_video
from pixelrefer_core.video import (
    fingerprint,
    iter_frame_chunks,
    iter_frames,
    probe,
    read_frames,
    sample_indices,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames, _ = render_scene([SyntheticObject("red", "rect", 30, (40, 120), (4, 0))], 60, seed=1)
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    write_video(path, frames, fps=10.0)
    return str(path), frames


def test_probe_and_fingerprint(clip):
    path, frames = clip
    info = probe(path)
    assert (info.num_frames, info.width, info.height) == (60, 320, 240)
    assert info.fps == pytest.approx(10.0)
    assert info.duration_s == pytest.approx(6.0)
    import hashlib

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


def test_truncated_file_yields_readable_frames_then_raises(clip, tmp_path):
    path, _ = clip
    cut = tmp_path / "cut.mp4"
    data = open(path, "rb").read()
    cut.write_bytes(data[: int(len(data) * 0.75)])
    with pytest.raises(TruncatedVideoError) as e:
        probe(cut)
    assert 0 < e.value.frames_readable < 60
    seen = []
    with pytest.raises(TruncatedVideoError) as e2:
        for idx, _, _ in iter_frames(cut, chunk_size=8):
            seen.append(idx)
    assert seen == list(range(len(seen))) and len(seen) > 8
    assert e2.value.frames_readable == len(seen)
    assert os.path.basename(str(cut)) in str(e2.value)
