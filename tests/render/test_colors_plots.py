"""Object colours are stable and tell neighbours apart; plot data follows the boxes."""

from __future__ import annotations

import itertools

import pytest

from pixelrefer_core.render import BoxRow, count_series, hex_color, object_color, svg_points, trajectories


def test_colour_depends_on_the_id_only_and_neighbours_differ():
    assert object_color(7) == object_color(7)
    colours = [object_color(i) for i in range(24)]
    assert len(set(colours)) == 24
    for a, b in itertools.combinations(colours[:12], 2):  # no two of the first dozen are near twins
        assert sum(abs(x - y) for x, y in zip(a, b, strict=True)) > 40
    assert hex_color((255, 0, 16)) == "#ff0010"
    assert all(0 <= c <= 255 for c in object_color(-3))


def _row(oid, f, x0, y0, x1, y1):
    return BoxRow(oid, f, f / 10, x0, y0, x1, y1)


def test_trajectories_are_box_centres_in_frame_order():
    rows = [_row(2, 4, 10, 10, 20, 30), _row(2, 0, 0, 0, 10, 10), _row(5, 2, 4, 4, 6, 6)]
    paths = trajectories(rows)
    assert paths[2] == [(0.0, 5.0, 5.0), (0.4, 15.0, 20.0)]
    assert paths[5] == [(0.2, 5.0, 5.0)]


def test_count_series_counts_objects_per_sampled_frame():
    rows = [_row(1, 0, 0, 0, 1, 1), _row(2, 0, 0, 0, 1, 1), _row(1, 3, 0, 0, 1, 1), _row(3, 6, 0, 0, 1, 1)]
    series = count_series(rows)
    assert series.times == pytest.approx([0.0, 0.3, 0.6])
    assert series.counts == [2, 1, 1]
    assert series.peak == 2


def test_svg_points_scale_and_shift():
    assert svg_points([(1, 2), (3.25, 4)], sx=2, sy=0.5, dx=1) == "3.0,1.0 7.5,2.0"
