"""The batched describe engine: many (frames, masks, question) items -> answers, for both variants.

`DescribeEngine.run(items)` first checks every item (InputError / PromptError naming the item's key,
before any model work), orders them (Lite: by prompt length; full: group by group of shared prefix), then
per batch builds decode rows (`engine_lite.LitePlanner` / `engine_full.FullPlanner`: one packed
vision-encoder pass per batch, vision tokens and prefix prefill shared per group) and decodes them
together (`decoding.greedy_decode`: left-padded greedy with the repetition penalty). Each item's k-means
init comes from its own generator seeded with the engine's seed and the padding math is exact, so an
item's answer does not depend on which batch it lands in (tested: batch == single, prefix reuse ==
one-at-a-time, fp32). On CUDA out-of-memory the batch size is halved (sticky) and the batch retried.

The fast path (`engine_fast`: continuous batching over a static KV cache, CUDA graphs, the vision
encoder's packed fast path, rows built on a thread while decoding) switches on by itself when the model
is on CUDA (`fast_path=None`), or explicitly with `fast_path=True` (also on CPU, where it runs eagerly:
the same tokens as the standard path, tested). `fast_path=False` keeps the standard path everywhere.

`describe_one` is the one-question-at-a-time path of the official `mm_infer`: the variant's processor,
then `model.generate(**inputs)` (transformers' generate over the multimodal embeddings).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from transformers import GenerationConfig, PreTrainedTokenizerBase

from pixelrefer_core.errors import PixelReferError, PromptError
from pixelrefer_core.model.configuration_pixelrefer import PixelReferConfig
from pixelrefer_core.model.errors import InputError
from pixelrefer_core.model.processing_pixelrefer import PixelReferProcessor, processor_for

from .decoding import greedy_decode, greedy_settings, trim_at_eos
from .engine_fast import FastPathOptions, fast_pass, run_fast
from .engine_full import FullPlan, FullPlanner
from .engine_lite import LitePlan, LitePlanner
from .generation import decode_answer
from .items import DescribeItem, DescribeResult, EngineStats
from .slot_decoding import unsupported_reason
from .version import ENGINE_VERSION

logger = logging.getLogger(__name__)


__all__ = [
    "ENGINE_VERSION",
    "DescribeEngine",
    "DescribeItem",
    "DescribeResult",
    "EngineStats",
    "FastPathOptions",
    "describe_one",
]

Plan = LitePlan | FullPlan


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError)


def _named(item: DescribeItem, err: PixelReferError) -> PixelReferError:
    """The same kind of error with the item's key in front."""
    return type(err)(f"item {item.key!r}: {err}")


class DescribeEngine:
    """Batched, deterministic describing with PixelRefer or PixelRefer-Lite. `run(items)` returns results
    in the order of `items`.

    repetition_penalty None = the checkpoint's generation_config value (1.1 released).
    progress: optional callback `progress(done, total)` after each batch.
    reuse_prefix (full model): prefill each shared prompt prefix once (False: every item prefills its
    whole prompt; the answers are the same). max_encoder_patches: cap on patches per vision-encoder pass.
    fast_path: None = on when the model is on CUDA (and its LLM is one `slot_decoding` covers), True =
    on (ValueError when the LLM is not covered), False = off; fast_options: the fast path's knobs
    (`FastPathOptions`; None = chosen per device). With the fast path `batch_size` is the items per
    vision pass and `FastPathOptions.decode_slots` the rows decoded at once (None: from free GPU memory).
    `last_stats` holds the `EngineStats` of the latest run.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int = 8,
        max_new_tokens: int = 64,
        repetition_penalty: float | None = None,
        seed: int = 0,
        progress: Callable[[int, int], None] | None = None,
        *,
        reuse_prefix: bool = True,
        max_encoder_patches: int | None = None,
        fast_path: bool | None = None,
        fast_options: FastPathOptions | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"DescribeEngine: batch_size must be >= 1, got {batch_size}")
        reason = unsupported_reason(model)
        if fast_path and reason is not None:
            raise ValueError(f"DescribeEngine: fast_path=True but {reason}")
        on_cuda = torch.device(model.device).type == "cuda"
        self.fast_path = bool(fast_path) if fast_path is not None else (on_cuda and reason is None)
        self.fast_options = fast_options or FastPathOptions()
        self.decode_slots: int | None = self.fast_options.decode_slots
        self.decode_slots_used = 0
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.repetition_penalty = repetition_penalty
        self.seed = seed
        self.progress = progress
        self.planner: LitePlanner | FullPlanner
        if isinstance(model.config, PixelReferConfig):
            self.planner = FullPlanner(model, tokenizer, seed, max_encoder_patches, reuse_prefix=reuse_prefix)
        else:
            self.planner = LitePlanner(model, tokenizer, seed, max_encoder_patches)
        self.last_stats = EngineStats()

    def _plan(self, item: DescribeItem, index: int) -> Plan:
        try:
            return self.planner.plan(item, index)
        except (InputError, PromptError) as err:
            raise _named(item, err) from err

    def _run_batch(self, items: Sequence[DescribeItem], plans: Sequence[Plan]) -> list[DescribeResult]:
        start = time.perf_counter()
        stats = EngineStats()  # added to last_stats once the batch succeeded (an OOM retry counts once)
        with torch.inference_mode():
            rows = self.planner.rows(items, plans, stats)  # type: ignore[arg-type]
        settings = greedy_settings(self.model, self.tokenizer, self.max_new_tokens, self.repetition_penalty)
        new_ids = greedy_decode(self.model, rows, settings)
        self.planner.finish(plans)  # type: ignore[arg-type]
        per_item_ms = (time.perf_counter() - start) * 1000.0 / len(items)
        stats.batches += 1
        stats.items += len(items)
        stats.generated_tokens += sum(len(ids) for ids in new_ids)
        self.last_stats.add(stats)
        return [
            DescribeResult(
                key=item.key,
                token_ids=out,
                text=decode_answer(self.tokenizer, out),
                n_tokens=len(out),
                latency_ms=per_item_ms,
            )
            for item, out in zip(items, new_ids, strict=True)
        ]

    def run(self, items: Sequence[DescribeItem]) -> list[DescribeResult]:
        """Describe every item; every item is checked (InputError / PromptError naming it) before model work."""
        items = list(items)
        plans = [self._plan(it, i) for i, it in enumerate(items)]
        self.last_stats = EngineStats()
        self.planner.start(plans)  # type: ignore[arg-type]
        order = self.planner.order(plans)  # type: ignore[arg-type]
        if self.fast_path:
            return run_fast(self, items, plans, order)
        results: list[DescribeResult | None] = [None] * len(items)
        self._run_standard(items, plans, order, results)
        return results  # type: ignore[return-value]

    def _fast_pass(
        self, items: Sequence[DescribeItem], plans: Sequence[Plan], order: Sequence[int]
    ) -> Iterator[tuple[int, DescribeResult]]:
        """(item index, result) of the items of `order` through the fast path, as they finish."""
        return fast_pass(self, items, plans, order)

    def _run_standard(
        self,
        items: Sequence[DescribeItem],
        plans: Sequence[Plan],
        order: Sequence[int],
        results: list[DescribeResult | None],
    ) -> None:
        """Today's path: batches of `batch_size` in `order`, each decoded to its longest answer."""
        total = len(items)
        done, pos = total - len(order), 0
        while pos < len(order):
            chunk = list(order[pos : pos + self.batch_size])
            try:
                out = self._run_batch([items[i] for i in chunk], [plans[i] for i in chunk])
            except Exception as err:
                if not _is_oom(err) or len(chunk) == 1:
                    raise
                self.batch_size = max(1, self.batch_size // 2)
                logger.warning(
                    "out of memory with a batch of %d; retrying with %d", len(chunk), self.batch_size
                )
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            for i, res in zip(chunk, out, strict=True):
                results[i] = res
            pos += len(chunk)
            done += len(chunk)
            logger.info("described %d/%d items (batch of %d)", done, total, len(chunk))
            if self.progress is not None:
                self.progress(done, total)


def describe_one(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    frames: Sequence[np.ndarray],
    masks: np.ndarray | torch.Tensor | None,
    mask_frame_ids: Sequence[int] | None,
    question: str,
    timestamps: Sequence[float] | None = None,
    mask_frames: Sequence[np.ndarray] | None = None,
    max_new_tokens: int = 2048,
    repetition_penalty: float | None = None,
    generator: torch.Generator | None = None,
    *,
    object_frame_ids: Sequence[Sequence[int]] | None = None,
) -> tuple[list[int], str]:
    """One question, unbatched, as the official `mm_infer` does it: greedy, the checkpoint's repetition
    penalty (1.1 released) unless given, stop at eos. Returns (new token ids without eos, decoded text).

    Full model: `frames` = what the LLM sees, `timestamps` per frame (None = an image of one frame),
    `mask_frames` = the annotated frames the masks index (None = frames); masks may be None for a
    region-free question. Lite: `frames` are the annotated frames; `object_frame_ids` groups masks by
    object (see DescribeItem). generator: k-means init RNG (default: a fresh one seeded 0).
    """
    processor = processor_for(model, tokenizer)
    if isinstance(processor, PixelReferProcessor):
        inputs = processor(frames, question, masks, mask_frame_ids, timestamps, mask_frames, generator)
    else:
        if mask_frames is not None:
            raise InputError("mask_frames is a field of the full PixelRefer; Lite masks lie on `frames`")
        if masks is None or mask_frame_ids is None:
            raise InputError("PixelRefer-Lite needs masks (it sees only the objects)")
        inputs = processor(frames, masks, mask_frame_ids, question, object_frame_ids, timestamps, generator)
    settings = greedy_settings(model, tokenizer, max_new_tokens, repetition_penalty)
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=settings.max_new_tokens,
        repetition_penalty=settings.repetition_penalty,
        eos_token_id=list(settings.stop_ids),
        pad_token_id=settings.pad_id,
        suppress_tokens=list(settings.suppress_tokens) or None,
    )
    with torch.inference_mode():
        out = model.generate(**inputs, generation_config=config)
    ids = trim_at_eos(out[0].tolist(), settings.stop_ids)
    return ids, decode_answer(tokenizer, ids)
