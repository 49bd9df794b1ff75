"""Tiny, randomly initialised PixelRefer-Lite and PixelRefer models in the released checkpoint layout
(for tests, demos, CI, benchmarks).

`save_tiny_checkpoint(out_dir, model_kind="lite" | "full")` writes what a released checkpoint directory
holds: `config.json` (model_type `pixelreferlite_qwen2` or `pixelrefer_qwen2`, with region/image token
ids), `generation_config.json` (the released
decoding settings: greedy, repetition_penalty 1.1, eos [<|im_end|>, <|endoftext|>]), the weights
(`model.safetensors` or `pytorch_model.bin`, optionally sharded with an index) and the tokenizer files.
It loads through the same code as the real checkpoints: `load_pixelrefer(out_dir)`.

Profile: Qwen2 LLM hidden 64, 2 layers, 4 heads / 2 kv heads; vision encoder hidden 32, 2 layers, patch 14;
mask_num stays 32 (as released), so every code path and token count is the real one;
initializer_range 0.3 so that the random model writes varied text. The tokenizer is a
byte-level BPE trained on a fixed sentence (any text round-trips) plus the released special tokens.
Weights are drawn per state-dict name (`name_keyed_init_`), so they depend on the seed and the
checkpoint layout only. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from .configuration_pixelrefer import IMAGE_TOKEN, REGION_TOKEN, PixelReferConfig, PixelReferLiteConfig

if TYPE_CHECKING:
    from .modeling_pixelrefer import PixelReferForCausalLM
    from .modeling_pixelrefer_lite import PixelReferLiteForCausalLM

ModelKind = Literal["lite", "full"]
MODEL_KINDS: tuple[ModelKind, ...] = ("lite", "full")

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# Same tokens, same order, as the released tokenizer (Qwen2.5 specials, then those added in training).
SPECIAL_TOKENS = [
    ENDOFTEXT,
    IM_START,
    IM_END,
    IMAGE_TOKEN,
    "<|stream_start|>",
    "<|stream_end|>",
    REGION_TOKEN,
]

_CORPUS = (
    "There is one object in the video: a red car moves to the left of the road. "
    "Please describe in detail the marked object in the video. What is the category of the person? "
    "A small blue ball is rolling. The green square stays still near the white wall."
)

TINY_VISION_CONFIG = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "patch_size": 14,
    "num_channels": 3,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
    "attention_dropout": 0.0,
}


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE (~310 tokens + the released special tokens); eos `<|im_end|>`, pad `<|endoftext|>`."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        bos_token=None,
        unk_token=None,
        extra_special_tokens=[IMAGE_TOKEN, "<|stream_start|>", "<|stream_end|>", REGION_TOKEN],
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )


def tiny_config(
    vocab_size: int,
    region_token_index: int,
    image_token_index: int,
    *,
    tie_word_embeddings: bool = True,
    model_kind: ModelKind = "lite",
    **overrides: Any,
) -> PixelReferLiteConfig | PixelReferConfig:
    """The tiny profile (see module docstring) of `model_kind`; `overrides` replace any field."""
    fields: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        rms_norm_eps=1e-6,
        tie_word_embeddings=tie_word_embeddings,
        # Wider than the usual 0.02: a random model then writes varied text (not one repeated token) and
        # its greedy choices are far from float near-ties.
        initializer_range=0.3,
        mm_hidden_size=TINY_VISION_CONFIG["hidden_size"],
        vision_encoder_config=dict(TINY_VISION_CONFIG),
        region_token_index=region_token_index,
        image_token_index=image_token_index,
        architectures=["PixelReferLiteForCausalLM" if model_kind == "lite" else "PixelReferForCausalLM"],
    )
    fields.update(overrides)
    if model_kind == "lite":
        return PixelReferLiteConfig(**fields)
    if model_kind == "full":
        return PixelReferConfig(**fields)
    raise ValueError(f"model_kind must be one of {MODEL_KINDS}, got {model_kind!r}")


def _non_ascii_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Ids of ordinary tokens that do not decode to printable ASCII (lone bytes of multi-byte characters,
    control bytes). An untrained model picks them freely, and their bytes rarely form valid UTF-8."""
    out = []
    for token, idx in tokenizer.get_vocab().items():
        if token in SPECIAL_TOKENS:
            continue
        text = tokenizer.convert_tokens_to_string([token])
        if not text or not all(32 <= ord(c) < 127 for c in text):
            out.append(int(idx))
    return sorted(out)


def released_generation_config(tokenizer: PreTrainedTokenizerBase) -> GenerationConfig:
    """The released decoding settings (greedy, repetition_penalty 1.1, eos [<|im_end|>, <|endoftext|>]) for
    `tokenizer`, plus the tiny profile's suppression of non-ASCII byte tokens."""
    im_end = tokenizer.convert_tokens_to_ids(IM_END)
    eot = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    return GenerationConfig(
        do_sample=False,
        repetition_penalty=1.1,
        eos_token_id=[im_end, eot],
        pad_token_id=eot,
        bos_token_id=eot,
        # Tiny profile only (the released config has no such list): keep the untrained model's noise
        # readable ASCII instead of mojibake from random lone bytes. Prompts still round-trip any text.
        suppress_tokens=_non_ascii_token_ids(tokenizer),
    )


def _write_bin(state: dict[str, torch.Tensor], out: Path, shard: bool) -> None:
    """`pytorch_model.bin`, or two shards `pytorch_model-0000k-of-00002.bin` + `pytorch_model.bin.index.json`."""
    if not shard:
        torch.save(state, out / "pytorch_model.bin")
        return
    keys = list(state)
    halves = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    weight_map = {}
    for i, part in enumerate(halves, start=1):
        name = f"pytorch_model-{i:05d}-of-{len(halves):05d}.bin"
        torch.save({k: state[k] for k in part}, out / name)
        weight_map.update({k: name for k in part})
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2))


def _token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    tid = tokenizer.convert_tokens_to_ids(token)
    assert isinstance(tid, int), token
    return tid


def name_keyed_init_(model: torch.nn.Module, seed: int, std: float) -> None:
    """Draw every parameter from a generator seeded by (seed, its state-dict name), in place.

    The weights then depend only on the checkpoint layout (key names and shapes), not on the order in which
    the modules are built: a refactor that keeps the released keys keeps the tiny model's weights, so the
    golden outputs in tests/golden stay valid. Matrices: normal, std `std`; 1-D norm weights: 1 + normal, std 0.02;
    biases: normal, std 0.02 (non-zero, so a dropped bias changes outputs). Tied parameters are drawn once.
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            gen = torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % 2**63)
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
            if param.dim() >= 2:
                value = noise * std
            elif name.endswith("bias"):
                value = noise * 0.02
            else:
                value = 1.0 + noise * 0.02
            param.copy_(value.to(param.dtype))


def build_tiny_model(
    seed: int = 0,
    *,
    tie_word_embeddings: bool = True,
    model_kind: ModelKind = "lite",
    **config_overrides: Any,
) -> tuple[PixelReferLiteForCausalLM | PixelReferForCausalLM, PreTrainedTokenizerFast]:
    """(model, tokenizer) of the tiny profile of `model_kind` ("lite" or "full"), fp32, eval mode, weights
    drawn from `seed` by state-dict name (`name_keyed_init_`; the global RNG is left untouched).
    `save_tiny_checkpoint` writes exactly this model."""
    from .modeling_pixelrefer import PixelReferForCausalLM
    from .modeling_pixelrefer_lite import PixelReferLiteForCausalLM

    tokenizer = tiny_tokenizer()
    config = tiny_config(
        len(tokenizer),
        _token_id(tokenizer, REGION_TOKEN),
        _token_id(tokenizer, IMAGE_TOKEN),
        tie_word_embeddings=tie_word_embeddings,
        model_kind=model_kind,
        **config_overrides,
    )
    model: PixelReferLiteForCausalLM | PixelReferForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(config, PixelReferConfig):
            model = PixelReferForCausalLM(config).eval()
        else:
            model = PixelReferLiteForCausalLM(config).eval()
    name_keyed_init_(model, seed, config.initializer_range)
    model.generation_config = released_generation_config(tokenizer)
    return model, tokenizer


def save_tiny_checkpoint(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    safetensors: bool = True,
    shard: bool = False,
    tie_word_embeddings: bool = True,
    model_kind: ModelKind = "lite",
    **config_overrides: Any,
) -> str:
    """Write a tiny random PixelRefer-Lite (model_kind "lite") or PixelRefer ("full") checkpoint directory
    in the released layout; returns out_dir.

    safetensors=False writes `pytorch_model.bin` (the released format); shard=True splits the weights in
    shards with an index json. With tie_word_embeddings (as the 2B), `lm_head.weight` is not written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = build_tiny_model(
        seed, tie_word_embeddings=tie_word_embeddings, model_kind=model_kind, **config_overrides
    )
    config = model.config
    if safetensors:
        total = sum(p.numel() * p.element_size() for p in model.state_dict().values())
        model.save_pretrained(out, max_shard_size=(total // 2 + 1) if shard else "50GB")
    else:
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        _write_bin(state, out, shard)
        config.save_pretrained(out)
        model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


__all__ = [
    "MODEL_KINDS",
    "SPECIAL_TOKENS",
    "TINY_VISION_CONFIG",
    "build_tiny_model",
    "name_keyed_init_",
    "released_generation_config",
    "save_tiny_checkpoint",
    "tiny_config",
    "tiny_tokenizer",
]
