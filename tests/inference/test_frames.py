"""select_frames: spread over the visible span, best view per bin, sorted, deterministic."""

from __future__ import annotations

import pytest

from pixelrefer_core.inference import select_frames


def test_few_frames_are_all_kept_sorted():
    assert select_frames([9, 3, 5], [1, 1, 1], [1, 1, 1], k=8) == [3, 5, 9]


def test_one_frame_per_bin_spread_over_the_span():
    frames = list(range(0, 160))
    chosen = select_frames(frames, [1.0] * 160, [100.0] * 160, k=8)
    assert len(chosen) == 8 and chosen == sorted(chosen)
    assert [c // 20 for c in chosen] == list(range(8))  # one in each 20-frame bin


def test_best_view_wins_inside_a_bin():
    frames = list(range(40))
    areas = [10.0] * 40
    scores = [0.5] * 40
    areas[13] = 400.0  # big and confident: the pick of bin 10-19
    scores[27] = 0.99  # slightly more confident but tiny: loses to its bin-mates' area
    areas[27] = 1.0
    chosen = select_frames(frames, scores, areas, k=4)
    assert 13 in chosen and 27 not in chosen


def test_gaps_in_visibility_are_filled_with_the_best_remaining_frames():
    frames = [0, 1, 2, 3, 97, 98, 99]
    areas = [1, 50, 40, 2, 1, 1, 1]
    chosen = select_frames(frames, [1.0] * 7, areas, k=4)
    # bins of 25 frames: bin 0 -> frame 1 (largest), bin 3 -> frame 97 (tie, earlier); two slots left
    # go to the best remaining frames, 2 then 3
    assert chosen == [1, 2, 3, 97]


def test_rejects_inconsistent_inputs():
    with pytest.raises(ValueError, match="differ"):
        select_frames([1, 2], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="k must"):
        select_frames([1], [1.0], [1.0], k=0)
