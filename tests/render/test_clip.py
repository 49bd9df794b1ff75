"""Overlay clips decode with PyAV: one frame per source frame, the size asked for, each object's stored
mask tinted in its colour (held between samples), and the source untouched far from every mask."""

from __future__ import annotations

import av
import numpy as np
import pytest
from scipy.ndimage import binary_dilation, binary_erosion

from pixelrefer_core.errors import VideoNotFoundError
from pixelrefer_core.masks import encode_rle, mask_box
from pixelrefer_core.render import MaskRecord, object_color, render_clip
from pixelrefer_core.synthetic import SyntheticObject, render_scene, write_video

N, FPS, STEP = 24, 12.0, 3
ALPHA = 0.45


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    objects = [SyntheticObject("red", "rect", 26, start=(120, 30), velocity=(-3.0, 0.0)),
               SyntheticObject("yellow", "circle", 20, start=(30, 82), velocity=(2.0, 0.0), enter_frame=5)]
    frames, raw = render_scene(objects, N, 160, 120, seed=5)
    path = str(tmp_path_factory.mktemp("clip") / "src.mp4")
    write_video(path, frames, fps=FPS)
    with av.open(path) as c:  # the source as the decoder sees it (what the overlay started from)
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    masks = [{i + 1: m for i, m in per.items() if m.any()} for per in raw]
    records = [MaskRecord(oid, f, mask_box(m), encode_rle(m), 120, 160)
               for f in range(0, N, STEP) for oid, m in masks[f].items()]
    return path, decoded, masks, records


def _decode(path):
    with av.open(path) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_tint_inside_stored_masks_and_source_far_from_them(scene, tmp_path):
    src, decoded, masks, records = scene
    out = str(tmp_path / "overlay.mp4")
    result = render_clip(src, out, records, {1: "a red box", 2: None})
    frames = _decode(out)
    assert result.frames == len(frames) == N
    assert frames[0].shape == (120, 160, 3)
    for f in range(N):
        held = f - f % STEP  # the sample whose masks this frame shows
        near = np.zeros((120, 160), bool)
        for oid, mask in masks[held].items():
            inner = binary_erosion(mask, iterations=3)
            expected = decoded[f][inner].astype(float) * (1 - ALPHA) + np.array(object_color(oid)) * ALPHA
            got = frames[f][inner].astype(float)
            assert np.abs(got - expected).mean() < 12, (f, oid)
            assert np.abs(got - decoded[f][inner]).mean() > 25, (f, oid)  # it really is tinted
            near |= mask
        far = ~binary_dilation(near, iterations=20)
        far[:50] = False  # the label strips sit above the boxes, all in the top rows
        assert far.sum() > 5000
        assert np.abs(frames[f][far].astype(float) - decoded[f][far]).mean() < 3, f


def test_masks_are_held_between_samples(scene, tmp_path):
    src, decoded, masks, records = scene
    out = str(tmp_path / "held.mp4")
    render_clip(src, out, records)
    frames = _decode(out)
    f = 7  # between samples 6 and 9: object 1 shows its frame-6 mask, although it moved since
    only_old = masks[6][1] & ~masks[7][1]
    assert only_old.sum() > 20
    inner = binary_erosion(only_old, iterations=1)
    expected = decoded[f][inner].astype(float) * (1 - ALPHA) + np.array(object_color(1)) * ALPHA
    assert np.abs(frames[f][inner].astype(float) - expected).mean() < 15


def test_max_side_and_plain_reencode(scene, tmp_path):
    src, decoded, _, records = scene
    small = render_clip(src, str(tmp_path / "small.mp4"), records, max_side=81)
    assert (small.width, small.height) == (80, 60)  # even sizes for 4:2:0
    assert _decode(small.path)[0].shape == (60, 80, 3)
    plain = render_clip(src, str(tmp_path / "plain.mp4"), records, draw=False)
    frames = _decode(plain.path)
    assert len(frames) == N
    assert np.abs(frames[10].astype(float) - decoded[10]).mean() < 3


def test_a_missing_source_is_a_video_error(tmp_path):
    with pytest.raises(VideoNotFoundError):
        render_clip(str(tmp_path / "gone.mp4"), str(tmp_path / "out.mp4"), [])
