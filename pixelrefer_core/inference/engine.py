"""The batched describe engine: many (object frames, masks, question) items -> answers.

Per batch: object tokens of every item in one packed `compute_object_tokens` call (frames with equal
`frame_keys` share their global image), then one left-padded greedy `generate` over `inputs_embeds`.
Each item's k-means init comes from its own `torch.Generator` seeded with the engine's `seed`, and the
padding math is exact, so an item's answer does not depend on which batch it lands in (tested:
batch == single in fp32). On CUDA out-of-memory the batch size is halved (sticky) and the batch retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from pixelrefer_core.errors import PromptError
from pixelrefer_core.model.object_tokens import ObjectTokenRequest

from .generation import decode_answer, encode_prompt, generate_from_embeddings

logger = logging.getLogger(__name__)

ENGINE_VERSION = "pixelrefer-lite-describe-1"


@dataclass
class DescribeItem:
    """One question about one or several objects.

    frames: RGB HxWx3 uint8 frames (only those carrying masks); masks: [N, H, W] bool/{0,1}, ordered object
    by object then frame by frame; mask_frame_ids[i]: index into `frames` of mask i; question: text with one
    `<region>` per object; object_frame_ids: per object, the frame positions of its masks (None: in video
    form one object over all masks, in image form one object per mask); timestamps: seconds per frame
    position (None = image form); frame_keys: optional identity per frame, e.g. (video_id, frame_idx), so
    items of one batch sharing frames encode their global image once.
    """

    key: Hashable
    frames: list[np.ndarray]
    masks: np.ndarray
    mask_frame_ids: list[int]
    question: str
    object_frame_ids: list[list[int]] | None = None
    timestamps: list[float] | None = None
    frame_keys: list[Hashable] | None = None


@dataclass
class DescribeResult:
    """key: the item's key; token_ids: generated ids (eos excluded); text: decoded, special tokens skipped,
    stripped; n_tokens: len(token_ids); latency_ms: wall time of the item's batch divided by its size."""

    key: Hashable
    token_ids: list[int]
    text: str
    n_tokens: int
    latency_ms: float


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError)


class DescribeEngine:
    """Batched, deterministic describing. `run(items)` returns results in the order of `items`.

    repetition_penalty None = the checkpoint's generation_config value (1.1 released).
    progress: optional callback `progress(done, total)` after each batch.
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
    ):
        if batch_size < 1:
            raise ValueError(f"DescribeEngine: batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.repetition_penalty = repetition_penalty
        self.seed = seed
        self.progress = progress

    def encode(self, item: DescribeItem) -> torch.Tensor:
        """Prompt token ids of one item; PromptError names the item's key."""
        try:
            return encode_prompt(
                self.tokenizer,
                item.question,
                item.mask_frame_ids,
                self.model.config.mask_num,
                item.object_frame_ids,
                item.timestamps,
            )
        except PromptError as err:
            raise PromptError(f"item {item.key!r}: {err}") from err

    def _request(self, item: DescribeItem) -> ObjectTokenRequest:
        return ObjectTokenRequest(
            frames=item.frames,
            masks=item.masks,
            mask_frame_ids=item.mask_frame_ids,
            frame_keys=item.frame_keys,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _run_batch(self, items: Sequence[DescribeItem], ids: Sequence[torch.Tensor]) -> list[DescribeResult]:
        start = time.perf_counter()
        tokens = self.model.get_region_features([self._request(it) for it in items])
        embeds = []
        for item, seq, tok in zip(items, ids, tokens, strict=True):
            try:
                embeds.append(self.model.embed_with_object_tokens(seq, tok))
            except PromptError as err:
                raise PromptError(f"item {item.key!r}: {err}") from err
        new_ids = generate_from_embeddings(
            self.model, self.tokenizer, embeds, self.max_new_tokens, self.repetition_penalty
        )
        per_item_ms = (time.perf_counter() - start) * 1000.0 / len(items)
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
        """Describe every item; prompts are validated (PromptError) before any model work."""
        items = list(items)
        ids = [self.encode(it) for it in items]
        # Similar prompt lengths in one batch waste less padding; results don't depend on the grouping.
        order = sorted(range(len(items)), key=lambda i: (ids[i].numel(), i))
        results: list[DescribeResult | None] = [None] * len(items)
        done, pos, total = 0, 0, len(items)
        while pos < total:
            chunk = order[pos : pos + self.batch_size]
            try:
                out = self._run_batch([items[i] for i in chunk], [ids[i] for i in chunk])
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
        return results  # type: ignore[return-value]


def describe_one(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    frames: Sequence[np.ndarray],
    masks: np.ndarray,
    mask_frame_ids: Sequence[int],
    question: str,
    object_frame_ids: Sequence[Sequence[int]] | None = None,
    timestamps: Sequence[float] | None = None,
    max_new_tokens: int = 2048,
    repetition_penalty: float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[list[int], str]:
    """One question, unbatched, as the official `mm_infer` does it: greedy, the checkpoint's repetition
    penalty (1.1 released) unless given, stop at eos. Returns (new token ids without eos, decoded text).
    generator: k-means init RNG (default: a fresh one seeded 0)."""
    ids = encode_prompt(
        tokenizer, question, mask_frame_ids, model.config.mask_num, object_frame_ids, timestamps
    )
    request = ObjectTokenRequest(
        frames=list(frames),
        masks=masks,
        mask_frame_ids=list(mask_frame_ids),
        generator=generator if generator is not None else torch.Generator().manual_seed(0),
    )
    tokens = model.get_region_features([request])[0]
    embeds = model.embed_with_object_tokens(ids, tokens)
    out = generate_from_embeddings(model, tokenizer, [embeds], max_new_tokens, repetition_penalty)[0]
    return out, decode_answer(tokenizer, out)


__all__ = ["ENGINE_VERSION", "DescribeEngine", "DescribeItem", "DescribeResult", "describe_one"]
