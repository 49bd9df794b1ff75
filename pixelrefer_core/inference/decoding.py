"""Batched greedy decoding over embeddings, with shared-prefix KV caches.

A row is the rest of a prompt (`DecodeRow.embeds` [S, D]) after an optional prefix whose keys/values were
computed once (`PrefixCache`, from `prefill_prefix`) and are shared by every row that starts with it (the
full model's chat header + video tokens). A batch is laid out as

    cache part:  [prefix_r (P_r) | zeros (P - P_r)]          P = longest prefix of the batch
    input part:  [zeros (S - S_r) | rest_r (S_r)]            S = longest rest, left-padded
    generated:   one token per step

with a 2-D attention mask that is 0 on every padding slot and explicit position ids (0..P_r-1 for the
prefix, then P_r.. for the rest and the generated tokens), so a row computes what it would alone
(batch == single, prefix reuse == one full prefill, up to float rounding; tested in fp32).

Decoding is greedy, as the released pipeline: transformers' `RepetitionPenaltyLogitsProcessor` over the
row's generated tokens only (what the official `generate(inputs_embeds=...)` penalises), the checkpoint's
`suppress_tokens` if any, stop at any stop id, at most `max_new_tokens`. transformers' `generate` cannot
take several prefix caches with padding between prefix and rest, hence this loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from transformers import (
    DynamicCache,
    LogitsProcessorList,
    PreTrainedTokenizerBase,
    RepetitionPenaltyLogitsProcessor,
    SuppressTokensLogitsProcessor,
)

__all__ = [
    "DecodeRow",
    "GreedySettings",
    "PrefixCache",
    "greedy_decode",
    "greedy_settings",
    "prefill_prefix",
    "trim_at_eos",
]


@dataclass(frozen=True)
class PrefixCache:
    """Keys/values of a prompt prefix: per decoder layer ([1, kv_heads, P, head_dim], same for values)."""

    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    length: int


@dataclass(frozen=True)
class DecodeRow:
    """embeds: [S, D] the prompt after `prefix` (all of it when prefix is None)."""

    embeds: torch.Tensor
    prefix: PrefixCache | None = None

    @property
    def prefix_length(self) -> int:
        return 0 if self.prefix is None else self.prefix.length


@dataclass(frozen=True)
class GreedySettings:
    """max_new_tokens; stop_ids (eos list); pad_id (fed to finished rows); repetition_penalty (1.0 = off);
    suppress_tokens (ids never generated)."""

    max_new_tokens: int
    stop_ids: tuple[int, ...]
    pad_id: int
    repetition_penalty: float = 1.0
    suppress_tokens: tuple[int, ...] = ()


def greedy_settings(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    max_new_tokens: int,
    repetition_penalty: float | None = None,
) -> GreedySettings:
    """Settings from the checkpoint's generation_config (eos list, pad, repetition_penalty 1.1 released,
    suppress_tokens); `repetition_penalty` overrides the checkpoint's value when given."""
    gen = model.generation_config
    eos = gen.eos_token_id if gen.eos_token_id is not None else tokenizer.eos_token_id
    stop = tuple(int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]))
    pad = gen.pad_token_id if gen.pad_token_id is not None else tokenizer.pad_token_id
    penalty = repetition_penalty if repetition_penalty is not None else gen.repetition_penalty
    return GreedySettings(
        max_new_tokens=int(max_new_tokens),
        stop_ids=stop,
        pad_id=int(pad) if pad is not None else stop[0],
        repetition_penalty=float(penalty) if penalty is not None else 1.0,
        suppress_tokens=tuple(int(t) for t in (gen.suppress_tokens or ())),
    )


def trim_at_eos(ids: Sequence[int], stop: Sequence[int]) -> list[int]:
    """Tokens before the first stop id."""
    out = []
    for t in ids:
        if t in stop:
            break
        out.append(int(t))
    return out


@torch.inference_mode()
def prefill_prefix(model: Any, embeds: torch.Tensor) -> PrefixCache:
    """Run the LLM over a prefix [P, D] once and keep its keys/values (no logits are needed)."""
    out = model.model(inputs_embeds=embeds[None].to(model.device, model.dtype), use_cache=True)
    layers = tuple((layer.keys, layer.values) for layer in out.past_key_values.layers)
    return PrefixCache(layers=layers, length=int(embeds.shape[0]))


def _batch_cache(model: Any, rows: Sequence[DecodeRow], width: int) -> DynamicCache:
    """A DynamicCache holding each row's prefix keys/values, right-padded with zeros to `width`."""
    if width == 0:
        return DynamicCache(config=model.config)
    template = next(r.prefix for r in rows if r.prefix is not None)
    data = []
    for layer, (k0, v0) in enumerate(template.layers):
        keys = k0.new_zeros(len(rows), k0.shape[1], width, k0.shape[3])
        values = v0.new_zeros(len(rows), v0.shape[1], width, v0.shape[3])
        for r, row in enumerate(rows):
            if row.prefix is not None:
                k, v = row.prefix.layers[layer]
                keys[r, :, : row.prefix.length] = k[0]
                values[r, :, : row.prefix.length] = v[0]
        data.append((keys, values))
    return DynamicCache(ddp_cache_data=data, config=model.config)


@torch.inference_mode()
def greedy_decode(model: Any, rows: Sequence[DecodeRow], settings: GreedySettings) -> list[list[int]]:
    """New token ids of every row (stop id excluded), greedy (see the module docstring)."""
    if not rows or settings.max_new_tokens <= 0:
        return [[] for _ in rows]
    device, dtype = model.device, model.dtype
    batch = len(rows)
    width_p = max(r.prefix_length for r in rows)
    width_s = max(int(r.embeds.shape[0]) for r in rows)
    dim = int(rows[0].embeds.shape[1])
    x = torch.zeros(batch, width_s, dim, dtype=dtype, device=device)
    mask = torch.zeros(batch, width_p + width_s, dtype=torch.long, device=device)
    pos = torch.ones(batch, width_s, dtype=torch.long, device=device)
    next_pos = torch.zeros(batch, dtype=torch.long, device=device)
    for r, row in enumerate(rows):
        s, p = int(row.embeds.shape[0]), row.prefix_length
        x[r, width_s - s :] = row.embeds.to(device, dtype)
        mask[r, :p] = 1
        mask[r, width_p + width_s - s :] = 1
        pos[r, width_s - s :] = torch.arange(p, p + s, device=device)
        next_pos[r] = p + s
    cache = _batch_cache(model, rows, width_p)
    processors = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.suppress_tokens:
        processors.append(SuppressTokensLogitsProcessor(list(settings.suppress_tokens), device=device))
    stop = torch.tensor(settings.stop_ids, device=device)
    generated = torch.zeros(batch, 0, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    out = model(
        inputs_embeds=x,
        attention_mask=mask,
        position_ids=pos,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    for step in range(settings.max_new_tokens):
        scores = processors(cast(torch.LongTensor, generated), out.logits[:, -1].float())
        token = torch.where(finished, torch.full_like(next_pos, settings.pad_id), scores.argmax(dim=-1))
        generated = torch.cat([generated, token[:, None]], dim=1)
        finished |= torch.isin(token, stop)
        if bool(finished.all()) or step == settings.max_new_tokens - 1:
            break
        mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
        out = model(
            inputs_embeds=model.get_input_embeddings()(token)[:, None],
            attention_mask=mask,
            position_ids=next_pos[:, None],
            past_key_values=out.past_key_values,
            use_cache=True,
            logits_to_keep=1,
        )
        next_pos = next_pos + 1
    return [trim_at_eos(row, settings.stop_ids) for row in generated.tolist()]
