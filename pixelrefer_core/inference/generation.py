"""Prompt tokenisation and left-padded batched greedy generation over `inputs_embeds`.

Each sequence is the chat-wrapped prompt with its `<REGION>` embeddings replaced by object tokens.
Sequences of a batch are left-padded (zero embeddings, attention_mask 0); transformers' `generate`
derives position ids from the attention mask, so a padded row computes what it would alone.
Decoding is greedy with the checkpoint's repetition penalty (applied to generated tokens only, as the
released pipeline does) and stops at any eos id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessorList,
    PreTrainedTokenizerBase,
    RepetitionPenaltyLogitsProcessor,
)

from pixelrefer_core.model.prompting import build_prompt


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase,
    question: str,
    mask_frame_ids: Sequence[int],
    mask_num: int,
    object_frame_ids: Sequence[Sequence[int]] | None = None,
    timestamps: Sequence[float] | None = None,
) -> torch.Tensor:
    """Token ids [L] of the chat-wrapped prompt (raises PromptError on placeholder/object mismatches)."""
    text = build_prompt(question, mask_frame_ids, mask_num, object_frame_ids, timestamps)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


def eos_ids(model: Any, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The stop ids: generation_config.eos_token_id (a list in released checkpoints) or the tokenizer's eos."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


def default_repetition_penalty(model: Any) -> float:
    """The checkpoint's generation_config value (1.1 for the released models), 1.0 when unset."""
    value = getattr(model.generation_config, "repetition_penalty", None)
    return float(value) if value is not None else 1.0


def decode_answer(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """The answer text as the released pipeline gives it: special tokens skipped, whitespace stripped."""
    text = tokenizer.decode(list(ids), skip_special_tokens=True)
    return (text if isinstance(text, str) else "".join(text)).strip()


def trim_at_eos(ids: Sequence[int], stop: Sequence[int]) -> list[int]:
    """Tokens before the first stop id."""
    out = []
    for t in ids:
        if t in stop:
            break
        out.append(int(t))
    return out


@torch.inference_mode()
def generate_from_embeddings(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    embeddings: Sequence[torch.Tensor],
    max_new_tokens: int,
    repetition_penalty: float | None = None,
) -> list[list[int]]:
    """Greedy continuation of each sequence of embeddings [L_i, D]; returns new token ids, eos excluded."""
    if not embeddings:
        return []
    stop = eos_ids(model, tokenizer)
    pad = model.generation_config.pad_token_id
    pad = (
        int(pad)
        if pad is not None
        else (tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0])
    )
    lengths = [e.shape[0] for e in embeddings]
    width = max(lengths)
    dim = embeddings[0].shape[1]
    batch = embeddings[0].new_zeros(len(embeddings), width, dim)
    mask = torch.zeros(len(embeddings), width, dtype=torch.long, device=batch.device)
    for row, (emb, n) in enumerate(zip(embeddings, lengths, strict=True)):
        batch[row, width - n :] = emb
        mask[row, width - n :] = 1
    penalty = default_repetition_penalty(model) if repetition_penalty is None else float(repetition_penalty)
    # repetition_penalty=1.0 explicitly: generate() fills unset fields from the checkpoint's generation_config.
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=max_new_tokens,
        repetition_penalty=1.0,
        eos_token_id=stop,
        pad_token_id=pad,
    )
    # Our own penalty processor: transformers' built-in one skips, per row, as many leading ids as the row
    # has left padding, which with `inputs_embeds` (no prompt ids) drops that row's first *generated*
    # tokens and makes a padded row decode differently from the same row alone. Here every row's ids
    # are exactly its generated tokens, which is what the released pipeline penalises.
    processors = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(penalty)] if penalty != 1.0 else [])
    out = model.generate(
        inputs_embeds=batch, attention_mask=mask, generation_config=config, logits_processor=processors
    )
    return [trim_at_eos(row.tolist(), stop) for row in out]


__all__ = [
    "decode_answer",
    "default_repetition_penalty",
    "encode_prompt",
    "eos_ids",
    "generate_from_embeddings",
    "trim_at_eos",
]
