"""DescribeEngine on the tiny model (fp32, CPU): batched == single, determinism, OOM halving, errors."""

from __future__ import annotations

import pytest
import torch

from pixelrefer_core.errors import PromptError
from pixelrefer_core.inference import DescribeEngine, DescribeItem, describe_one
from pixelrefer_core.inference.generation import encode_prompt, generate_from_embeddings

from .conftest import make_item

MAX_NEW = 12


@pytest.fixture(scope="module")
def items():
    # mixed lengths (1-3 frames), image and video forms, two items sharing frames (same frame_keys)
    out = [make_item(f"v{k}", n_frames=1 + k % 3, seed=k) for k in range(5)]
    out.append(make_item("img", n_frames=1, seed=9, video=False))
    twin = make_item("v1-again", n_frames=2, seed=1)
    twin.question = "There is one object in the video: <region>.\nWhat colour is it?"
    out.append(twin)
    return out


@pytest.fixture(scope="module")
def single(tiny, items):
    model, tok = tiny
    return DescribeEngine(model, tok, batch_size=1, max_new_tokens=MAX_NEW).run(items)


def test_batched_results_equal_batch_size_one(tiny, items, single):
    model, tok = tiny
    progress = []
    batched = DescribeEngine(
        model, tok, batch_size=4, max_new_tokens=MAX_NEW, progress=lambda d, t: progress.append((d, t))
    ).run(items)
    assert [r.key for r in batched] == [it.key for it in items]
    assert [r.token_ids for r in batched] == [r.token_ids for r in single]
    assert [r.text for r in batched] == [r.text for r in single]
    assert progress[-1] == (len(items), len(items)) and len(progress) == 2


def test_results_carry_text_counts_and_latency(single):
    assert all(r.n_tokens == len(r.token_ids) and 0 < r.n_tokens <= MAX_NEW for r in single)
    assert all(r.latency_ms > 0 for r in single)
    assert any(r.text for r in single)


def test_describe_one_matches_the_engine_and_is_deterministic(tiny, items, single):
    model, tok = tiny
    it = items[2]
    runs = [
        describe_one(
            model,
            tok,
            it.frames,
            it.masks,
            it.mask_frame_ids,
            it.question,
            timestamps=it.timestamps,
            max_new_tokens=MAX_NEW,
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    ids, text = runs[0]
    assert ids == single[2].token_ids and text == single[2].text and text != ""


def test_generation_stops_at_eos(tiny, items):
    model, tok = tiny
    it = items[0]
    ids = encode_prompt(tok, it.question, it.mask_frame_ids, 32, timestamps=it.timestamps)
    req_tokens = model.object_tokens(it.frames, it.masks, it.mask_frame_ids, torch.Generator().manual_seed(0))
    embeds = model.embed_with_object_tokens(ids, req_tokens)
    free = generate_from_embeddings(model, tok, [embeds], 6)[0]
    old = model.generation_config.eos_token_id
    try:
        model.generation_config.eos_token_id = [free[2]]  # the third token generated becomes a stop token
        stopped = generate_from_embeddings(model, tok, [embeds], 6)[0]
    finally:
        model.generation_config.eos_token_id = old
    assert stopped == free[: free.index(free[2])]


class FlakyOOMEngine(DescribeEngine):
    """Raises CUDA OOM for any batch above `limit` items, as a too-small GPU would."""

    limit = 2
    seen: list

    def _run_batch(self, items, ids):
        self.seen.append(len(items))
        if len(items) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return super()._run_batch(items, ids)


def test_out_of_memory_halves_the_batch_and_retries(tiny, items, single):
    model, tok = tiny
    engine = FlakyOOMEngine(model, tok, batch_size=8, max_new_tokens=MAX_NEW)
    engine.seen = []
    results = engine.run(items)
    assert engine.seen[:4] == [7, 4, 2, 2]  # 7 items: batch size 8 -> 4 -> 2, then batches of 2
    assert engine.batch_size == 2
    assert [r.token_ids for r in results] == [r.token_ids for r in single]


def test_out_of_memory_at_batch_one_is_raised(tiny, items):
    model, tok = tiny
    engine = FlakyOOMEngine(model, tok, batch_size=2, max_new_tokens=MAX_NEW)
    engine.limit, engine.seen = 0, []
    with pytest.raises(torch.cuda.OutOfMemoryError):
        engine.run(items[:1])


def test_bad_prompt_fails_before_model_work_and_names_the_item(tiny, items):
    model, tok = tiny
    bad = DescribeItem(
        "broken", items[0].frames, items[0].masks, items[0].mask_frame_ids, "no placeholder here"
    )
    engine = FlakyOOMEngine(model, tok)
    engine.seen = []
    with pytest.raises(PromptError, match="broken"):
        engine.run([items[0], bad])
    assert engine.seen == []


def test_repetition_penalty_matches_transformers_generate(tiny, items):
    model, tok = tiny
    some = items[:4]
    strong = DescribeEngine(model, tok, batch_size=4, max_new_tokens=MAX_NEW, repetition_penalty=3.0).run(
        some
    )
    plain = DescribeEngine(model, tok, batch_size=4, max_new_tokens=MAX_NEW, repetition_penalty=1.0).run(some)
    one = [
        describe_one(
            model,
            tok,
            it.frames,
            it.masks,
            it.mask_frame_ids,
            it.question,
            timestamps=it.timestamps,
            max_new_tokens=MAX_NEW,
            repetition_penalty=3.0,
        )[0]
        for it in some
    ]
    assert [r.token_ids for r in strong] == one
    assert [r.token_ids for r in strong] != [r.token_ids for r in plain]  # the penalty does change answers
