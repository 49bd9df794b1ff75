"""Prompt tokenisation helpers and greedy generation from embeddings (a thin layer over `decoding`).

Decoding is greedy with the checkpoint's repetition penalty (applied to generated tokens only, as the
released pipeline does) and stops at any eos id; see `decoding` for the batched loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from pixelrefer_core.model.prompting import build_prompt

from .decoding import DecodeRow, greedy_decode, greedy_settings, trim_at_eos

__all__ = [
    "decode_answer",
    "default_repetition_penalty",
    "encode_prompt",
    "eos_ids",
    "generate_from_embeddings",
    "trim_at_eos",
]


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase,
    question: str,
    mask_frame_ids: Sequence[int],
    mask_num: int,
    object_frame_ids: Sequence[Sequence[int]] | None = None,
    timestamps: Sequence[float] | None = None,
) -> torch.Tensor:
    """PixelRefer-Lite: token ids [L] of the chat-wrapped prompt (PromptError on placeholder mismatches)."""
    text = build_prompt(question, mask_frame_ids, mask_num, object_frame_ids, timestamps)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


def eos_ids(model: Any, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The stop ids: generation_config.eos_token_id (a list in released checkpoints) or the tokenizer's eos."""
    return list(greedy_settings(model, tokenizer, 1).stop_ids)


def default_repetition_penalty(model: Any) -> float:
    """The checkpoint's generation_config value (1.1 for the released models), 1.0 when unset."""
    value = getattr(model.generation_config, "repetition_penalty", None)
    return float(value) if value is not None else 1.0


def decode_answer(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """The answer text as the released pipeline gives it: special tokens skipped, whitespace stripped."""
    text = tokenizer.decode(list(ids), skip_special_tokens=True)
    return (text if isinstance(text, str) else "".join(text)).strip()


def generate_from_embeddings(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    embeddings: Sequence[torch.Tensor],
    max_new_tokens: int,
    repetition_penalty: float | None = None,
) -> list[list[int]]:
    """Greedy continuation of each sequence of embeddings [L_i, D] in one left-padded batch; new token ids
    per sequence, eos excluded."""
    settings = greedy_settings(model, tokenizer, max_new_tokens, repetition_penalty)
    return greedy_decode(model, [DecodeRow(embeds=e) for e in embeddings], settings)
