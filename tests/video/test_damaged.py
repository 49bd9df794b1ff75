"""Damaged files: partial videos are read up to where they break, hopeless ones raise the specific
error, and the C decoders' chatter never reaches the terminal."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pixelrefer_core.errors import CorruptVideoError, TruncatedVideoError
from pixelrefer_core.video import iter_frame_chunks, iter_frames, probe, read_frames


def test_first_half_of_a_faststart_file_is_a_partial_video(clip, tmp_path, first_half):
    path, frames = clip
    cut = first_half(path, tmp_path / "cut.mp4")
    info = probe(cut)
    assert info.partial and info.backend == "pyav"
    assert 10 < info.num_frames < 60 and info.decoded_frames == info.num_frames
    assert info.declared_frames == 60 and info.duration_s == pytest.approx(info.num_frames / 10.0)
    assert "decoding stops" in info.partial_reason
    seen = list(iter_frames(cut, chunk_size=8))  # ends without raising
    assert [i for i, _, _ in seen] == list(range(info.num_frames))
    assert [t for _, t, _ in seen] == pytest.approx([i / 10.0 for i in range(info.num_frames)])
    idx, _, rgb = seen[-1]
    assert np.abs(rgb.astype(int) - frames[idx]).mean() < 4  # the readable frames are the real ones
    sampled = [i for c in iter_frame_chunks(cut, target_fps=5.0, chunk_size=4) for i, _, _ in c]
    assert sampled == list(range(0, info.num_frames, 2))
    got, ts = read_frames(cut, [info.num_frames - 1, 0])
    assert ts == pytest.approx([(info.num_frames - 1) / 10.0, 0.0])
    with pytest.raises(IndexError):
        read_frames(cut, [info.num_frames])


def test_first_half_of_a_non_faststart_file_has_no_index(slow_clip, tmp_path, first_half):
    assert probe(slow_clip).num_frames == 60
    cut = first_half(slow_clip, tmp_path / "cut_slow.mp4")
    with pytest.raises(TruncatedVideoError, match="moov") as e:
        probe(cut)
    assert e.value.frames_readable == 0 and e.value.path == cut
    with pytest.raises(TruncatedVideoError):
        list(iter_frames(cut))


def test_a_file_whose_frames_do_not_decode_is_corrupt(clip, tmp_path, zero_payload):
    bad = zero_payload(clip[0], tmp_path / "zeroed.mp4")
    with pytest.raises(CorruptVideoError, match="no frame decodes") as e:
        probe(bad)
    assert e.value.path == bad


_PROBE_ALL = """
import sys
from pixelrefer_core.errors import VideoError
from pixelrefer_core.video import iter_frames, probe
for path in sys.argv[1:]:
    try:
        probe(path)
        list(iter_frames(path))
    except VideoError as exc:
        print(type(exc).__name__)
"""


def test_decoder_chatter_stays_off_stderr(clip, slow_clip, tiny_clip, tmp_path, first_half, zero_payload):
    """decord and FFmpeg print 'moov atom not found', 'Invalid NAL unit size' ... on fd 2 by themselves."""
    paths = [
        first_half(slow_clip, tmp_path / "a.mp4"),
        first_half(clip[0], tmp_path / "b.mp4"),
        zero_payload(clip[0], tmp_path / "c.mp4"),
        tiny_clip[0],
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", _PROBE_ALL, *paths], capture_output=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split() == ["TruncatedVideoError", "CorruptVideoError"]
    assert out.stderr == b""


def test_capture_keeps_lines_that_are_not_decoder_chatter(capfd, caplog):
    from pixelrefer_core.video._quiet import native_stderr_captured

    caplog.set_level("DEBUG", logger="pixelrefer_core.video.decoder")
    with native_stderr_captured("x.mp4"):
        os.write(2, b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c1a2b3c0] moov atom not found\n")
        os.write(2, b"[07:40:18] /src/video/video_reader.cc:83: ERROR opening: x.mp4\n")
        os.write(2, b"another thread's line\n")
    err = capfd.readouterr().err
    assert err == "another thread's line\n"
    assert "moov atom not found" in caplog.text and "ERROR opening" in caplog.text
