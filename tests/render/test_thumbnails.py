"""Thumbnails: crop with context around the object, the mask outline in the object's colour, reduced frame."""

from __future__ import annotations

import numpy as np

from pixelrefer_core.render import ThumbnailConfig, context_box, decode_jpeg, make_thumbnail, object_color


def test_context_box_grows_the_box_and_stays_in_the_frame():
    assert context_box((40, 20, 80, 60), 200, 100, context=0.25, min_px=2) == (30, 10, 90, 70)
    assert context_box((0, 0, 8, 8), 100, 100, context=0.25, min_px=4) == (0, 0, 12, 12)
    assert context_box((0, 0, 0, 0), 50, 40) == (0, 0, 50, 40)  # no box: the whole frame


def _scene():
    frame = np.full((120, 200, 3), 90, np.uint8)
    frame[:, :, 2] = np.arange(200, dtype=np.uint8)[None, :]  # a gradient, so the crop's place shows
    mask = np.zeros((120, 200), bool)
    mask[40:70, 100:140] = True
    frame[mask] = (250, 250, 250)
    return frame, mask


def test_crop_shows_the_object_with_context_and_its_outline():
    frame, mask = _scene()
    color = object_color(3)
    thumb = make_thumbnail(frame, mask, color, config=ThumbnailConfig(crop_side=400, context=0.5, outline_px=2))
    assert thumb.crop_box == (80, 25, 160, 85)
    crop = decode_jpeg(thumb.crop_jpeg)
    assert crop.shape == (thumb.crop_h, thumb.crop_w, 3) == (60, 80, 3)
    # the object (white) is in the middle of the crop, context (background) around it
    assert crop[30, 40].min() > 200
    assert abs(int(crop[3, 3, 0]) - 90) < 12
    # the outline: pixels on the mask's border carry the object's colour
    edge = crop[15, 30:50].astype(int)  # the top edge of the mask (row 40 of the frame)
    assert np.abs(edge - np.array(color)).sum(axis=1).min() < 60


def test_frame_is_reduced_to_its_longest_side_and_crops_never_grow():
    frame, mask = _scene()
    thumb = make_thumbnail(frame, mask, (255, 0, 0), config=ThumbnailConfig(frame_side=100, crop_side=32))
    assert (thumb.frame_w, thumb.frame_h) == (100, 60)
    assert decode_jpeg(thumb.frame_jpeg).shape == (60, 100, 3)
    assert max(thumb.crop_w, thumb.crop_h) == 32
    small = make_thumbnail(frame, mask, (255, 0, 0), config=ThumbnailConfig(crop_side=1000, context=0.0, min_context_px=0))
    assert (small.crop_w, small.crop_h) == (40, 30)  # the box itself, not scaled up
