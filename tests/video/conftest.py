"""Generated videos for the reader tests: a normal clip, a 16x16 one, cut and damaged copies."""

from __future__ import annotations

import pytest

from pixelrefer_core.synthetic import SyntheticObject, render_scene, write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """60 frames, 320x240, 10 fps, faststart mp4 -> (path, frames)."""
    frames, _ = render_scene([SyntheticObject("red", "rect", 30, (40, 120), (4, 0))], 60, seed=1)
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    write_video(path, frames, fps=10.0)
    return str(path), frames


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory, clip):
    """The same frames written without faststart (the index, `moov`, at the end of the file)."""
    _, frames = clip
    path = tmp_path_factory.mktemp("v") / "slow.mp4"
    write_video(path, frames, fps=10.0, faststart=False)
    return str(path)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A valid 16x16 H.264 video of 30 frames (decord cannot decode this size)."""
    frames, _ = render_scene([SyntheticObject("red", "rect", 6, (4, 8), (0.3, 0))], 30, width=16, height=16, seed=0)
    path = tmp_path_factory.mktemp("v") / "tiny16.mp4"
    write_video(path, frames, fps=10.0)
    return str(path), frames


def _first_half(src: str, dst) -> str:
    data = open(src, "rb").read()
    dst.write_bytes(data[: len(data) // 2])
    return str(dst)


def _zero_payload(src: str, dst) -> str:
    """Keep the container's boxes, zero every byte of the media data: it opens, no frame decodes."""
    data = bytearray(open(src, "rb").read())
    start = data.find(b"mdat") + 4
    data[start:] = bytes(len(data) - start)
    dst.write_bytes(bytes(data))
    return str(dst)


@pytest.fixture
def first_half():
    """first_half(src, dst) -> dst: a copy of the first half of src's bytes."""
    return _first_half


@pytest.fixture
def zero_payload():
    """zero_payload(src, dst) -> dst: src with its media data zeroed."""
    return _zero_payload
