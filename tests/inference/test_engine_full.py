"""DescribeEngine on the tiny full PixelRefer (fp32, CPU): batched + prefix reuse == one at a time, shared
vision work, and bad input refused before model work, naming the item."""

from __future__ import annotations

import numpy as np
import pytest

from pixelrefer_core.errors import PromptError
from pixelrefer_core.inference import DescribeEngine, DescribeItem, describe_one
from pixelrefer_core.model import InputError
from pixelrefer_core.model.tiny import save_tiny_checkpoint

MAX_NEW = 10
H, W = 56, 84


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    from pixelrefer_core.model import load_pixelrefer

    return load_pixelrefer(save_tiny_checkpoint(tmp_path_factory.mktemp("full") / "ckpt", model_kind="full"))


def _frames(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(n)]


def _mask(top: int, left: int, h: int = 14, w: int = 20) -> np.ndarray:
    m = np.zeros((1, H, W), bool)
    m[0, top : top + h, left : left + w] = True
    return m


def _video_item(
    key, video: str, frames, mask, question="There is one object in the video: <region>.\nDescribe it."
):
    n = len(frames)
    return DescribeItem(
        key,
        frames,
        mask,
        [0] * (0 if mask is None else len(mask)),
        question,
        timestamps=[0.5 * i for i in range(n)],
        frame_keys=[(video, i) for i in range(n)],
    )


@pytest.fixture(scope="module")
def items():
    a, b = _frames(1, 4), _frames(2, 3)
    annotated = _frames(3, 1)  # masks on a frame the LLM does not see
    out = [_video_item(("a", k), "A", a, _mask(4 + 9 * k, 6 + 12 * k)) for k in range(3)]
    out.append(
        _video_item(
            ("a", "pair"),
            "A",
            a,
            np.concatenate([_mask(5, 5), _mask(30, 50)]),
            "<video>Compare <region> and <region>.",
        )
    )
    out.append(_video_item(("a", "scene"), "A", a, None, "What happens in the video?"))
    out[-1].mask_frame_ids = []
    annotated_item = _video_item(("a", "annotated"), "A", a, _mask(20, 30))
    annotated_item.mask_frames = annotated
    out.append(annotated_item)
    out += [_video_item(("b", k), "B", b, _mask(10 + 8 * k, 40 - 10 * k)) for k in range(2)]
    image = _frames(4, 1)
    out.append(DescribeItem("image", image, _mask(12, 12), [0], "What is <region>?", frame_keys=[("img", 0)]))
    out.append(
        DescribeItem("no-keys", a, _mask(0, 0), [0], "Describe <region>.", timestamps=[0, 0.5, 1, 1.5])
    )
    return out


@pytest.fixture(scope="module")
def one_at_a_time(full, items):
    model, tok = full
    return [
        describe_one(
            model,
            tok,
            it.frames,
            it.masks,
            it.mask_frame_ids,
            it.question,
            timestamps=it.timestamps,
            mask_frames=it.mask_frames,
            max_new_tokens=MAX_NEW,
        )[0]
        for it in items
    ]


@pytest.mark.parametrize(("batch_size", "reuse_prefix"), [(1, False), (1, True), (3, True), (16, True)])
def test_engine_equals_one_question_at_a_time(full, items, one_at_a_time, batch_size, reuse_prefix):
    model, tok = full
    engine = DescribeEngine(
        model, tok, batch_size=batch_size, max_new_tokens=MAX_NEW, reuse_prefix=reuse_prefix
    )
    results = engine.run(items)
    assert [r.key for r in results] == [it.key for it in items]
    assert [r.token_ids for r in results] == one_at_a_time
    assert any(r.text for r in results)


def test_vision_and_prefill_are_shared_per_video_frame_set(full, items):
    model, tok = full
    engine = DescribeEngine(model, tok, batch_size=4, max_new_tokens=2)
    engine.run(items)
    stats = engine.last_stats
    # groups: video A (6 items), video B (2), the image, the item without frame keys
    assert stats.visual_inputs_encoded == 4 and stats.prefixes_prefilled == 4
    assert stats.items == len(items) and stats.batches == 3
    assert 0 < stats.prefill_tokens < stats.prefill_tokens_one_at_a_time
    alone = DescribeEngine(model, tok, batch_size=4, max_new_tokens=2, reuse_prefix=False)
    alone.run(items)
    assert alone.last_stats.prefill_tokens == alone.last_stats.prefill_tokens_one_at_a_time
    assert alone.last_stats.prefill_tokens_one_at_a_time == stats.prefill_tokens_one_at_a_time
    assert alone.last_stats.visual_inputs_encoded == 4  # vision tokens are shared either way


class RecordingEngine(DescribeEngine):
    """Records every batch it would run, so a test can see that nothing ran."""

    def _run_batch(self, items, plans):
        self.ran.append(len(items))
        return super()._run_batch(items, plans)


def _bad(items, **change):
    base = items[0]
    fields = dict(
        key="bad",
        frames=base.frames,
        masks=base.masks,
        mask_frame_ids=base.mask_frame_ids,
        question=base.question,
        timestamps=base.timestamps,
        frame_keys=base.frame_keys,
    )
    fields.update(change)
    return DescribeItem(**fields)


@pytest.mark.parametrize(
    ("change", "error", "needle"),
    [
        (dict(question="<region> and <region>"), PromptError, r"2 <region> placeholder\(s\) but 1 mask"),
        (dict(masks=np.zeros((1, H, W), bool)), InputError, "mask 0 .*is empty"),
        (dict(mask_frame_ids=[7]), InputError, "frame id 7 does not exist"),
        (dict(timestamps=[0.0, 1.0]), InputError, "2 timestamps for 4 frames"),
        (dict(frame_keys=[("A", 0)]), InputError, "1 frame_keys for 4 frames"),
        (dict(timestamps=None), InputError, "an image takes one frame"),
        (dict(object_frame_ids=[[0, 0]]), InputError, "one mask per object"),
    ],
)
def test_bad_input_is_refused_before_model_work_naming_the_item(full, items, change, error, needle):
    model, tok = full
    engine = RecordingEngine(model, tok)
    engine.ran = []
    with pytest.raises(error, match=needle) as err:
        engine.run([items[1], _bad(items, **change)])
    assert "item 'bad'" in str(err.value)
    assert engine.ran == []


def test_repetition_penalty_matches_transformers_generate(full, items):
    model, tok = full
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
