"""Our own forward over the PixelRefer LLM (Qwen2) with a static KV cache of fixed-size slots.

The decode fast path needs what transformers' caches do not give together: fixed shapes (for CUDA graphs),
rows of different lengths and positions in one batch, and a row replaced by another while the rest keep
decoding (continuous batching). So each row owns a slot of a preallocated cache, per decoder layer

    keys, values: [slots, kv_heads, capacity, head_dim]

and the token at position p of a slot's row lives at index p (prefix, rest of the prompt and generated
tokens are contiguous from 0; the last index is scratch, where padding tokens write). A query at position
p attends to indices <= p of its own slot, so a row computes exactly what it computes alone; what other
slots hold, and what lies beyond p in its own, never enters.

The layer math is the model's own modules (`input_layernorm`, `q/k/v/o_proj`, `mlp`, the rotary
embedding and `apply_rotary_pos_emb` of transformers' Qwen2), in the same order as `Qwen2DecoderLayer`;
only the attention differs in layout: grouped-query heads are folded into the query length
([n, kv_heads, groups * T, d] against [n, kv_heads, capacity, d]), the same products without repeating
the cache, so SDPA runs its masked kernels (no `enable_gqa` fallback to the math kernel on CUDA).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

from .decoding import PrefixCache

__all__ = ["SlotKVCache", "SlotLLM", "slot_bytes", "unsupported_reason"]


def unsupported_reason(model: Any) -> str | None:
    """Why `SlotLLM` cannot run this model (None when it can): it covers Qwen2 layers without sliding
    windows and with a position-independent RoPE (the released 2B and 7B configs)."""
    cfg = model.config
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers") or not hasattr(inner, "rotary_emb"):
        return "the model has no Qwen2 decoder layers"
    if getattr(cfg, "use_sliding_window", False) and getattr(cfg, "sliding_window", None):
        return "sliding-window attention"
    rope = (getattr(cfg, "rope_parameters", None) or {}).get("rope_type", "default")
    if "dynamic" in rope or rope == "longrope":
        return f"rope_type {rope!r} changes with the sequence length"
    return None


def slot_bytes(config: Any, capacity: int, dtype: torch.dtype, max_new_tokens: int) -> int:
    """Device bytes one slot costs: its keys and values in every layer, plus the per-slot decode state
    (penalty mask and float32 scores over the vocabulary, generated ids)."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    elem = torch.empty((), dtype=dtype).element_size()
    kv = config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim * capacity * elem
    vocab = config.vocab_size * (1 + 4 * 4)  # seen mask + logits, scores and two temporaries in fp32
    return int(kv + vocab + 8 * max_new_tokens)


class SlotKVCache:
    """Keys and values of `slots` rows of up to `capacity - 1` positions each (index capacity-1 is scratch)."""

    def __init__(self, config: Any, slots: int, capacity: int, dtype: torch.dtype, device: torch.device):
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        shape = (slots, config.num_key_value_heads, capacity, head_dim)
        self.slots, self.capacity = slots, capacity
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.num_hidden_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.num_hidden_layers)]

    @property
    def scratch(self) -> int:
        return self.capacity - 1

    def load_prefix(self, slot: int, prefix: PrefixCache) -> None:
        """Copy a shared prefix's keys/values into positions [0, P) of `slot`."""
        for layer, (k, v) in enumerate(prefix.layers):
            self.keys[layer][slot, :, : prefix.length] = k[0]
            self.values[layer][slot, :, : prefix.length] = v[0]

    def grown(self, capacity: int) -> SlotKVCache:
        """A copy with room for `capacity - 1` positions per slot (the old contents kept, scratch excluded)."""
        new = SlotKVCache.__new__(SlotKVCache)
        new.slots, new.capacity = self.slots, capacity
        keep = self.capacity - 1
        new.keys, new.values = [], []
        for src, dst in ((self.keys, new.keys), (self.values, new.values)):
            for t in src:
                grown = t.new_zeros(t.shape[0], t.shape[1], capacity, t.shape[3])
                grown[:, :, :keep] = t[:, :, :keep]
                dst.append(grown)
        return new


class SlotLLM:
    """The LLM of a PixelRefer model run over slots of a `SlotKVCache` (see the module docstring)."""

    def __init__(self, model: Any):
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the slot decoder cannot run this model: {reason}")
        cfg = model.config
        self.layers = list(model.model.layers)
        self.norm = model.model.norm
        self.rotary = model.model.rotary_emb
        self.lm_head = model.lm_head
        self.embed = model.get_input_embeddings()
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.groups = self.heads // self.kv_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scaling = float(self.layers[0].self_attn.scaling) if self.layers else self.head_dim**-0.5

    def forward(
        self,
        cache: SlotKVCache,
        slots: torch.Tensor,
        embeds: torch.Tensor,
        positions: torch.Tensor,
        last: torch.Tensor,
        *,
        whole: bool = False,
    ) -> torch.Tensor:
        """Run rows `embeds` [n, T, D] at `positions` [n, T] (padding at the scratch index) in cache slots
        `slots` [n]; their keys/values are written into the cache. Returns float32 logits [n, vocab] of
        token `last[r]` of each row. `whole`: `slots` is every slot in order (decode), so the cache is
        attended in place instead of gathered."""
        n, t, _ = embeds.shape
        h = embeds
        cos, sin = self.rotary(h, positions)
        keys_at = torch.arange(cache.capacity, device=h.device)
        allowed = keys_at[None, None, :] <= positions[:, :, None]  # [n, T, capacity]
        mask = allowed[:, None].expand(n, self.groups, t, cache.capacity).reshape(n, 1, self.groups * t, -1)
        slot_grid = slots[:, None].expand(n, t)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            residual = h
            x = layer.input_layernorm(h)
            q = attn.q_proj(x).view(n, t, self.heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(x).view(n, t, self.kv_heads, self.head_dim).transpose(1, 2)
            v = attn.v_proj(x).view(n, t, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            kc, vc = cache.keys[i], cache.values[i]
            kc[slot_grid, :, positions] = k.transpose(1, 2)
            vc[slot_grid, :, positions] = v.transpose(1, 2)
            keys, values = (kc, vc) if whole else (kc.index_select(0, slots), vc.index_select(0, slots))
            qg = q.reshape(n, self.kv_heads, self.groups * t, self.head_dim)
            o = F.scaled_dot_product_attention(qg, keys, values, attn_mask=mask, scale=self.scaling)
            o = o.reshape(n, self.heads, t, self.head_dim).transpose(1, 2).reshape(n, t, -1)
            h = residual + attn.o_proj(o)
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        rows = torch.arange(n, device=h.device)
        out = self.norm(h[rows, last])
        logits: torch.Tensor = self.lm_head(out).float()
        return logits
