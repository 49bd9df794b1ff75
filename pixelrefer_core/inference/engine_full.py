"""How the describe engine turns full-PixelRefer items into decode rows, sharing vision and prefill work.

Items are grouped by their prompt prefix: equal `frame_keys`, timestamps and question text before the
modal tag give the same chat header + visual block, hence the same vision tokens and the same LLM keys /
values up to the last `<image>` token. Per group, once per run: the frames are preprocessed and encoded,
projected and compressed, and the prefix is prefilled (`decoding.prefill_prefix`). Per item: its object
crops (packed into the same vision-encoder pass as the batch's new frames), its object tokens (own
generator seeded with the engine's seed, drawn in mask order), and the embeddings of the rest of its
prompt. Items without `frame_keys` (or with a `<region>` before the tag) form a group of their own.
The engine orders items group by group, so a group's prefix lives only while its items are decoded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from pixelrefer_core.model.errors import InputError
from pixelrefer_core.model.image_processing_pixelrefer import ProcessedImage
from pixelrefer_core.model.modeling_outputs import VisualFeatures
from pixelrefer_core.model.modeling_pixelrefer import visual_image_keys
from pixelrefer_core.model.object_tokens import ImageKey
from pixelrefer_core.model.processing_pixelrefer import (
    PixelReferProcessor,
    RegionInputs,
    VisualInputs,
    check_full_request,
    prepare_region_inputs,
    prepare_visual_inputs,
)
from pixelrefer_core.model.prompting import REGION_PLACEHOLDER, split_at_modal_tag

from .decoding import DecodeRow, PrefixCache, prefill_prefix
from .items import DescribeItem, EngineStats

__all__ = ["FullPlan", "FullPlanner"]


@dataclass(frozen=True)
class FullPlan:
    """index: the item's position in the run; group: the key of the prompt prefix it shares."""

    index: int
    group: Hashable


@dataclass
class _Group:
    """What the items of one group share: their visual input, its vision tokens and the prefix cache."""

    visual_inputs: VisualInputs
    features: VisualFeatures
    prefix: PrefixCache | None = None
    prefix_ids: torch.Tensor | None = None


class FullPlanner:
    """Checks full-model items before model work and builds their decode rows batch by batch."""

    def __init__(
        self,
        model: Any,
        tokenizer: PreTrainedTokenizerBase,
        seed: int,
        max_encoder_patches: int | None,
        reuse_prefix: bool = True,
    ):
        self.model = model
        self.config = model.config
        self.processor = PixelReferProcessor(tokenizer, model.config)
        self.seed = seed
        self.max_encoder_patches = max_encoder_patches
        self.reuse_prefix = reuse_prefix
        self._groups: dict[Hashable, _Group] = {}
        self._remaining: Counter[Hashable] = Counter()

    def plan(self, item: DescribeItem, index: int) -> FullPlan:
        """The item's prefix group; InputError / PromptError for bad input (the caller names the item)."""
        if item.object_frame_ids is not None and any(len(g) != 1 for g in item.object_frame_ids):
            raise InputError(
                f"object_frame_ids {item.object_frame_ids}: the full PixelRefer takes one <region> per mask; "
                "give one mask per object (or one <region> per mask and no object_frame_ids)"
            )
        if item.frame_keys is not None and len(item.frame_keys) != len(item.frames):
            raise InputError(f"{len(item.frame_keys)} frame_keys for {len(item.frames)} frames")
        check_full_request(
            item.frames, item.masks, item.mask_frame_ids, item.question, item.timestamps, item.mask_frames
        )
        before, _ = split_at_modal_tag(item.question, video=item.timestamps is not None)
        group: Hashable
        if item.frame_keys is None or REGION_PLACEHOLDER in before:
            group = ("item", index)
        else:
            times = None if item.timestamps is None else tuple(float(t) for t in item.timestamps)
            group = ("frames", tuple(item.frame_keys), times, before)
        return FullPlan(index=index, group=group)

    def start(self, plans: Sequence[FullPlan]) -> None:
        """Begin a run over `plans`: nothing is shared with an earlier run."""
        self._groups = {}
        self._remaining = Counter(p.group for p in plans)

    def order(self, plans: Sequence[FullPlan]) -> list[int]:
        """Group by group (first appearance), items in run order inside a group."""
        first: dict[Hashable, int] = {}
        for p in plans:
            first.setdefault(p.group, p.index)
        return sorted(range(len(plans)), key=lambda i: (first[plans[i].group], i))

    def rows(
        self, items: Sequence[DescribeItem], plans: Sequence[FullPlan], stats: EngineStats
    ) -> list[DecodeRow]:
        regions: list[RegionInputs | None] = []
        for item in items:
            annotated = item.frames if item.mask_frames is None else item.mask_frames
            try:
                region = (
                    None
                    if item.masks is None
                    else prepare_region_inputs(annotated, item.masks, item.mask_frame_ids, self.config)
                )
            except InputError as err:  # the few checks that need the crop (e.g. a frame too small for one)
                raise InputError(f"item {item.key!r}: {err}") from err
            regions.append(region)
        new: dict[Hashable, VisualInputs] = {}
        for item, plan in zip(items, plans, strict=True):
            if plan.group not in self._groups and plan.group not in new:
                new[plan.group] = prepare_visual_inputs(item.frames, item.timestamps, self.config)
        images: dict[ImageKey, ProcessedImage] = {}
        for group, visual in new.items():
            images.update(zip(visual_image_keys(group, visual), visual.frames, strict=True))
        for i, region in enumerate(regions):
            if region is not None:
                images.update({("crop", i, j): img for j, img in enumerate(region.images)})
        feats = self.model.encode_images(
            images, max_encoder_patches=self.max_encoder_patches, stats=stats.vision
        )
        for group, visual in new.items():
            frame_feats = [feats[k] for k in visual_image_keys(group, visual)]
            self._groups[group] = _Group(visual, self.model.visual_features_from(frame_feats, visual))
            stats.visual_inputs_encoded += 1
        stats.vision.masks += sum(len(r.crops) for r in regions if r is not None)

        rows = []
        for i, (item, plan, region) in enumerate(zip(items, plans, regions, strict=True)):
            shared = self._groups[plan.group]
            objects = None
            if region is not None:
                crop_feats = [feats[("crop", i, j)] for j in range(len(region.images))]
                gen = torch.Generator().manual_seed(self.seed)
                objects = self.model.region_features_from(crop_feats, region, gen)
            ids = self.processor.prompt_ids(item.question, shared.visual_inputs, region)
            ids, embeds = self.model.embed_prompt(ids, shared.features, objects)
            stats.prefill_tokens_one_at_a_time += ids.numel()
            if not self.reuse_prefix:
                rows.append(DecodeRow(embeds=embeds))
                stats.prefill_tokens += ids.numel()
                continue
            cut = int(torch.nonzero(ids == self.config.image_token_index).max()) + 1
            if shared.prefix is None:
                shared.prefix = prefill_prefix(self.model, embeds[:cut])
                shared.prefix_ids = ids[:cut]
                stats.prefill_tokens += cut
                stats.prefixes_prefilled += 1
            elif shared.prefix_ids is None or not torch.equal(shared.prefix_ids, ids[:cut]):
                raise RuntimeError(
                    f"item {item.key!r}: its prompt prefix differs from its group's {plan.group!r}"
                )
            rows.append(DecodeRow(embeds=embeds[cut:], prefix=shared.prefix))
            stats.prefill_tokens += ids.numel() - cut
        return rows

    def finish(self, plans: Sequence[FullPlan]) -> None:
        """Forget the groups whose items are all described."""
        for plan in plans:
            self._remaining[plan.group] -= 1
            if self._remaining[plan.group] <= 0:
                self._groups.pop(plan.group, None)
                del self._remaining[plan.group]
