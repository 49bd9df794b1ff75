"""Masks are held between sampled frames until the next sample, never longer than one sampling step."""

from __future__ import annotations

from pixelrefer_core.render import HeldMasks, MaskRecord


def rec(oid, f):
    return MaskRecord(oid, f, (0, 0, 1, 1), None, 0, 0)


def shown(held, f):
    return [(r.object_id, r.frame_idx) for r in held.at(f)]


def test_each_object_shows_its_latest_sample_until_the_next_one():
    held = HeldMasks([rec(1, 0), rec(1, 3), rec(1, 6), rec(2, 3)])
    assert held.hold_frames == 3
    assert shown(held, 0) == [(1, 0)]
    assert shown(held, 2) == [(1, 0)]
    assert shown(held, 4) == [(1, 3), (2, 3)]
    # object 2 is not on sample 6: it disappears there instead of being held on
    assert shown(held, 6) == [(1, 6)]
    assert shown(held, 8) == [(1, 6)]
    assert shown(held, 9) == []  # one step after the last sample


def test_a_gap_in_the_sampling_does_not_stretch_a_mask():
    # samples every 2 frames, then nothing seen from 4 to 12
    held = HeldMasks([rec(1, 0), rec(1, 2), rec(1, 4), rec(1, 12)])
    assert held.hold_frames == 2
    assert shown(held, 5) == [(1, 4)]
    assert shown(held, 6) == []
    assert shown(held, 11) == []
    assert shown(held, 12) == [(1, 12)]


def test_nothing_before_an_object_first_appears():
    held = HeldMasks([rec(4, 10), rec(4, 12)])
    assert shown(held, 9) == []
    assert shown(held, 10) == [(4, 10)]
