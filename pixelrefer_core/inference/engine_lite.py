"""How the describe engine turns PixelRefer-Lite items into decode rows.

Per batch: object tokens of every item in one packed `compute_object_tokens` call (frames with equal
`frame_keys` share their global image), each item's k-means init from its own generator seeded with the
engine's seed, then the full prompt's embeddings with the `<REGION>` rows replaced (Lite prompts share no
prefix: each row is a whole prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from pixelrefer_core.model.errors import InputError
from pixelrefer_core.model.object_tokens import ObjectTokenRequest
from pixelrefer_core.model.processing_pixelrefer import PixelReferLiteProcessor, check_lite_request

from .decoding import DecodeRow
from .items import DescribeItem, EngineStats

__all__ = ["LitePlan", "LitePlanner"]


@dataclass(frozen=True)
class LitePlan:
    """index: the item's position in the run; input_ids: its prompt ids [L]."""

    index: int
    input_ids: torch.Tensor


class LitePlanner:
    """Checks Lite items before model work and builds their decode rows batch by batch."""

    def __init__(
        self, model: Any, tokenizer: PreTrainedTokenizerBase, seed: int, max_encoder_patches: int | None
    ):
        self.model = model
        self.processor = PixelReferLiteProcessor(tokenizer, model.config)
        self.seed = seed
        self.max_encoder_patches = max_encoder_patches

    def plan(self, item: DescribeItem, index: int) -> LitePlan:
        """Prompt ids of one item; InputError / PromptError for bad input (the caller names the item)."""
        if item.mask_frames is not None:
            raise InputError("mask_frames is a field of the full PixelRefer; Lite masks lie on `frames`")
        if item.masks is None:
            raise InputError("PixelRefer-Lite needs masks (it sees only the objects)")
        if item.frame_keys is not None and len(item.frame_keys) != len(item.frames):
            raise InputError(f"{len(item.frame_keys)} frame_keys for {len(item.frames)} frames")
        check_lite_request(
            item.frames,
            item.masks,
            item.mask_frame_ids,
            item.question,
            item.object_frame_ids,
            item.timestamps,
        )
        ids = self.processor.prompt_ids(
            item.question, item.mask_frame_ids, item.object_frame_ids, item.timestamps
        )
        return LitePlan(index=index, input_ids=ids)

    def order(self, plans: Sequence[LitePlan]) -> list[int]:
        """Similar prompt lengths in one batch waste less padding; results don't depend on the grouping."""
        return sorted(range(len(plans)), key=lambda i: (plans[i].input_ids.numel(), i))

    def rows(
        self, items: Sequence[DescribeItem], plans: Sequence[LitePlan], stats: EngineStats
    ) -> list[DecodeRow]:
        requests = []
        for item in items:
            assert item.masks is not None  # checked by plan()
            requests.append(
                ObjectTokenRequest(
                    frames=item.frames,
                    masks=item.masks,
                    mask_frame_ids=item.mask_frame_ids,
                    frame_keys=item.frame_keys,
                    generator=torch.Generator().manual_seed(self.seed),
                )
            )
        tokens = self.model.get_region_features(
            requests, max_encoder_patches=self.max_encoder_patches, stats=stats.vision
        )
        rows = []
        for plan, tok in zip(plans, tokens, strict=True):
            rows.append(DecodeRow(embeds=self.model.embed_with_object_tokens(plan.input_ids, tok)))
            stats.prefill_tokens += plan.input_ids.numel()
            stats.prefill_tokens_one_at_a_time += plan.input_ids.numel()
        return rows

    def start(self, plans: Sequence[LitePlan]) -> None:
        """Nothing is kept across batches or runs."""

    def finish(self, plans: Sequence[LitePlan]) -> None:
        """Nothing is kept across batches or runs."""
