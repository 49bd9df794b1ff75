"""The describe fast path on the tiny models (fp32, CPU): continuous batching over the slot KV cache gives
the standard path's tokens (Lite and full), refills slots when rows stop early, keeps the repetition
penalty and suppressed tokens, backs off on out-of-memory, and falls back when it breaks. The full
model's case is in test_fast_path_full.py."""

from __future__ import annotations

import pytest
import torch

from pixelrefer_core.inference import DescribeEngine
from pixelrefer_core.inference.continuous import ContinuousDecoder, DecodeRequest, PullSource
from pixelrefer_core.inference.decoding import DecodeRow, greedy_decode, greedy_settings
from pixelrefer_core.inference.engine_fast import FastPathOptions, choose_decode_slots
from pixelrefer_core.inference.slot_decoding import slot_bytes

from .conftest import make_item

MAX_NEW = 12


@pytest.fixture(scope="module")
def items():
    out = [make_item(f"v{k}", n_frames=1 + k % 3, seed=k) for k in range(5)]
    out.append(make_item("img", n_frames=1, seed=9, video=False))
    twin = make_item("v1-again", n_frames=2, seed=1)
    twin.question = "There is one object in the video: <region>.\nWhat colour is it?"
    out.append(twin)
    return out


@pytest.fixture(scope="module")
def standard(tiny, items):
    model, tok = tiny
    return DescribeEngine(model, tok, batch_size=4, max_new_tokens=MAX_NEW, fast_path=False).run(items)


def _fast(model, tok, batch_size=4, max_new=MAX_NEW, **options):
    return DescribeEngine(
        model, tok, batch_size=batch_size, max_new_tokens=max_new, fast_path=True,
        fast_options=FastPathOptions(**options),
    )


def test_fast_path_is_off_on_cpu_unless_asked(tiny):
    model, tok = tiny
    assert DescribeEngine(model, tok).fast_path is False
    assert DescribeEngine(model, tok, fast_path=True).fast_path is True


@pytest.mark.parametrize(
    ("batch_size", "options"),
    [(4, {}), (4, {"decode_slots": 1}), (3, {"decode_slots": 2, "sync_every": 1}), (2, {"decode_slots": 3, "overlap": True})],
)
def test_fast_path_gives_the_standard_paths_tokens(tiny, items, standard, batch_size, options):
    model, tok = tiny
    engine = _fast(model, tok, batch_size, **options)
    results = engine.run(items)
    assert [r.key for r in results] == [it.key for it in items]
    assert [r.token_ids for r in results] == [r.token_ids for r in standard]
    assert [r.text for r in results] == [r.text for r in standard]
    stats = engine.last_stats
    assert stats.fast_path and stats.items == len(items)
    assert stats.generated_tokens == sum(r.n_tokens for r in results)
    assert stats.decode_slots == options.get("decode_slots", batch_size)


def test_rows_that_stop_early_free_their_slot_for_the_next_row(tiny, items):
    """With a common token as stop id answers end at different steps; the slots are refilled at once,
    so the decode passes are fewer than static batches of the same size need (each runs to its longest)."""
    model, tok = tiny
    free = _fast(model, tok, batch_size=7).run(items)
    counts: dict[int, int] = {}
    for r in free:
        for t in r.token_ids[1:]:
            counts[t] = counts.get(t, 0) + 1
    common = max(counts, key=lambda t: counts[t])
    old = model.generation_config.eos_token_id
    try:
        model.generation_config.eos_token_id = [common]
        standard = DescribeEngine(model, tok, batch_size=1, max_new_tokens=MAX_NEW, fast_path=False).run(items)
        engine = _fast(model, tok, batch_size=7, decode_slots=2, sync_every=1)
        fast = engine.run(items)
    finally:
        model.generation_config.eos_token_id = old
    lengths = [r.n_tokens for r in standard]
    assert len(set(lengths)) > 1, "the stop id should end answers at different lengths"
    assert [r.token_ids for r in fast] == [r.token_ids for r in standard]
    stats = engine.last_stats
    assert stats.refills > 0
    # Static batches of 2 in the same (prompt-length) order: each runs until its longer answer stops.
    order = engine.planner.order([engine.planner.plan(it, i) for i, it in enumerate(items)])
    steps = [min(MAX_NEW, lengths[i] + 1) for i in order]  # the stop token is generated too
    static = sum(max(steps[i : i + 2]) - 1 for i in range(0, len(steps), 2))
    assert stats.decode_steps < static


def test_penalty_and_suppressed_tokens_match_the_standard_path(tiny, items):
    model, tok = tiny
    old = model.generation_config.suppress_tokens
    try:
        plain = _fast(model, tok).run(items[:4])
        model.generation_config.suppress_tokens = [plain[0].token_ids[0], plain[1].token_ids[1]]
        for penalty in (3.0, 1.0):
            want = DescribeEngine(model, tok, batch_size=4, max_new_tokens=MAX_NEW, repetition_penalty=penalty,
                                  fast_path=False).run(items[:4])
            got = DescribeEngine(model, tok, batch_size=4, max_new_tokens=MAX_NEW, repetition_penalty=penalty,
                                 fast_path=True).run(items[:4])
            assert [r.token_ids for r in got] == [r.token_ids for r in want]
            assert plain[0].token_ids[0] not in got[0].token_ids
    finally:
        model.generation_config.suppress_tokens = old


def test_slot_cache_grows_for_a_longer_row(tiny, items):
    """Rows longer than the cache's capacity (the full model's case: lengths known only after the vision
    pass) grow it; every row still decodes as it does alone."""
    model, tok = tiny
    settings = greedy_settings(model, tok, MAX_NEW)
    gen = torch.Generator().manual_seed(0)
    rows = [DecodeRow(embeds=torch.randn(n, model.config.hidden_size, generator=gen)) for n in (5, 40, 9, 70)]
    want = [greedy_decode(model, [row], settings)[0] for row in rows]
    decoder = ContinuousDecoder(model, settings, slots=2, capacity=16)
    source = PullSource(iter([[DecodeRequest(key=i, row=row) for i, row in enumerate(rows)]]))
    got = {req.key: ids for req, ids in decoder.run(source)}
    assert [got[i] for i in range(len(rows))] == want
    assert decoder.cache.capacity >= 70 + MAX_NEW + 1


class FlakyOOMFast(DescribeEngine):
    """Raises CUDA OOM after `after` answers whenever more than `limit` decode slots are in use."""

    limit, after = 2, 2
    seen: list

    def _fast_pass(self, items, plans, order):
        for n, out in enumerate(super()._fast_pass(items, plans, order)):
            self.seen.append((self.batch_size, self.decode_slots_used))
            if self.decode_slots_used > self.limit and n >= self.after:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
            yield out


def test_out_of_memory_halves_vision_chunks_and_slots_and_retries(tiny, items, standard):
    model, tok = tiny
    engine = FlakyOOMFast(model, tok, batch_size=8, max_new_tokens=MAX_NEW, fast_path=True)
    engine.seen = []
    results = engine.run(items)
    # 7 items: 8 per vision pass and 7 slots -> OOM after 2 answers -> 4 and 3 -> OOM after 2 more -> 2 and 1
    assert engine.seen[0] == (8, 7) and (4, 3) in engine.seen and engine.seen[-1] == (2, 1)
    assert (engine.batch_size, engine.decode_slots) == (2, 1)
    assert [r.token_ids for r in results] == [r.token_ids for r in standard]


def test_out_of_memory_at_one_slot_and_one_item_is_raised(tiny, items):
    model, tok = tiny
    engine = FlakyOOMFast(model, tok, batch_size=1, max_new_tokens=MAX_NEW, fast_path=True)
    engine.limit, engine.after, engine.seen = 0, 0, []
    with pytest.raises(torch.cuda.OutOfMemoryError):
        engine.run(items[:2])


class BrokenFast(DescribeEngine):
    def _fast_pass(self, items, plans, order):
        raise RuntimeError("a kernel the fast path needs is missing (injected)")
        yield  # pragma: no cover


def test_a_broken_fast_path_falls_back_to_the_standard_path_unless_strict(tiny, items, standard):
    model, tok = tiny
    engine = BrokenFast(model, tok, batch_size=4, max_new_tokens=MAX_NEW, fast_path=True)
    assert [r.token_ids for r in engine.run(items)] == [r.token_ids for r in standard]
    assert engine.fast_path is False  # not tried again by this engine
    strict = BrokenFast(model, tok, fast_path=True, fast_options=FastPathOptions(strict=True))
    with pytest.raises(RuntimeError, match="injected"):
        strict.run(items)


def test_decode_slots_fit_the_memory_they_are_given():
    """2B sizes (28 layers, 2 kv heads of 128, vocab 151,669) at 512 positions in bf16: 14,680,064 bytes
    of keys/values and 2,578,373 of decode state per slot."""

    class Cfg:
        num_hidden_layers, num_key_value_heads, hidden_size, num_attention_heads = 28, 2, 1536, 12
        vocab_size = 151669

    per_slot = 28 * 2 * 2 * 128 * 512 * 2 + 151669 * 17 + 8 * 64
    assert slot_bytes(Cfg, 512, torch.bfloat16, 64) == per_slot
    assert choose_decode_slots(Cfg, 512, torch.bfloat16, 64, 10 * per_slot, fraction=0.5) == 5
    assert choose_decode_slots(Cfg, 512, torch.bfloat16, 64, 10 * per_slot, fraction=0.5,
                               reserve_bytes=4 * per_slot) == 3
    assert choose_decode_slots(Cfg, 512, torch.bfloat16, 64, 10**12, max_slots=64) == 64
    assert choose_decode_slots(Cfg, 512, torch.bfloat16, 64, 0) == 1
