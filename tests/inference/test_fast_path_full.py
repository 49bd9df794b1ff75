"""The describe fast path on the tiny full PixelRefer (fp32, CPU): continuous batching with shared prompt
prefixes loaded into the slot cache gives the answers of one question at a time."""

from __future__ import annotations

import pytest

from pixelrefer_core.inference import DescribeEngine
from pixelrefer_core.inference.engine_fast import FastPathOptions

from .test_engine_full import MAX_NEW, full, items, one_at_a_time  # noqa: F401 - fixtures


@pytest.mark.parametrize(("batch_size", "slots", "overlap"), [(3, 2, False), (16, 16, True)])
def test_full_model_fast_path_equals_one_question_at_a_time(full, items, one_at_a_time, batch_size, slots,  # noqa: F811
                                                            overlap):
    model, tok = full
    engine = DescribeEngine(
        model, tok, batch_size=batch_size, max_new_tokens=MAX_NEW, fast_path=True,
        fast_options=FastPathOptions(decode_slots=slots, overlap=overlap),
    )
    results = engine.run(items)
    assert [r.key for r in results] == [it.key for it in items]
    assert [r.token_ids for r in results] == one_at_a_time
    stats = engine.last_stats
    assert stats.fast_path and stats.prefixes_prefilled == 4  # shared prefixes still prefilled once per group
    assert 0 < stats.prefill_tokens < stats.prefill_tokens_one_at_a_time
