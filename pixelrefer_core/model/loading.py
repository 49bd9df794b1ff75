"""Loading PixelRefer and PixelRefer-Lite checkpoints: a local directory or a Hugging Face hub id.

`load_pixelrefer` resolves the checkpoint (`checkpoints.resolve_checkpoint`: hub download only when the
argument is not a local path, at the given revision), reads its `model_type` and refuses any other than
the two supported, loads the tokenizer, writes the `<REGION>` / `<image>` ids it finds into the config,
and loads the weights through `AutoConfig` / `AutoModelForCausalLM` (both variants are registered on
import): `pixelrefer_qwen2` -> `PixelReferForCausalLM`, `pixelreferlite_qwen2` -> `PixelReferLiteForCausalLM`.
Their `from_pretrained` is transformers' own (model.safetensors, pytorch_model.bin, sharded forms with an
index json; a missing `lm_head.weight` is tied when `tie_word_embeddings`), made strict: key mismatches
raise ModelLoadError listing the missing / unexpected keys. The vision encoder is built from the
checkpoint's own config: nothing else is downloaded.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from pixelrefer_core.checkpoints import SUPPORTED_MODEL_TYPES, checkpoint_model_type, resolve_checkpoint
from pixelrefer_core.errors import ModelLoadError

from .configuration_pixelrefer import IMAGE_TOKEN, REGION_TOKEN, PixelReferConfig
from .modeling_pixelrefer import PixelReferForCausalLM
from .modeling_pixelrefer_lite import PixelReferLiteForCausalLM

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "checkpoint_model_type",
    "default_attn_implementation",
    "default_dtype",
    "load_pixelrefer",
    "load_tokenizer",
]

logger = logging.getLogger(__name__)


# Both variants register with AutoConfig / AutoModelForCausalLM when their modeling module is imported.
_REGISTERED = (PixelReferForCausalLM, PixelReferLiteForCausalLM)


def default_dtype(device: str | torch.device) -> torch.dtype:
    """bf16 on CUDA (the released dtype), fp32 elsewhere."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def default_attn_implementation(device: str | torch.device) -> str:
    """flash_attention_2 on CUDA when flash_attn imports, else sdpa."""
    if torch.device(device).type == "cuda":
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


def _token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int | None:
    tid = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(tid, int) or (tokenizer.unk_token_id is not None and tid == tokenizer.unk_token_id):
        return None
    return tid


def load_tokenizer(checkpoint_dir: str | os.PathLike[str]) -> PreTrainedTokenizerBase:
    try:
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(str(checkpoint_dir))
    except Exception as err:
        raise ModelLoadError(f"{checkpoint_dir}: cannot load the tokenizer: {err}") from err
    return tokenizer


def load_pixelrefer(
    id_or_dir: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[Any, PreTrainedTokenizerBase]:
    """(model, tokenizer) from a checkpoint directory or hub id, in eval mode on `device`.

    The model is a `PixelReferForCausalLM` or a `PixelReferLiteForCausalLM`, as the checkpoint's
    `model_type` says. dtype: None -> bf16 on CUDA, fp32 otherwise. attn_implementation: None ->
    flash_attention_2 on CUDA when installed, sdpa otherwise (used by the LLM and the vision encoder).
    revision: the hub revision (branch, tag or commit) to download; `resolve_checkpoint(id_or_dir,
    revision).model_id` is the identity of what is loaded. Raises ModelLoadError naming the path and reason.
    """
    ckpt = resolve_checkpoint(id_or_dir, revision, cache_dir=cache_dir).path
    model_type = checkpoint_model_type(ckpt)
    tokenizer = load_tokenizer(ckpt)
    region_id = _token_id(tokenizer, REGION_TOKEN)
    if region_id is None:
        raise ModelLoadError(
            f"{ckpt}: the tokenizer has no {REGION_TOKEN} token; not a PixelRefer checkpoint"
        )
    image_id = _token_id(tokenizer, IMAGE_TOKEN)
    if image_id is None and model_type == PixelReferConfig.model_type:
        raise ModelLoadError(f"{ckpt}: the tokenizer has no {IMAGE_TOKEN} token, which PixelRefer needs")
    dtype = dtype or default_dtype(device)
    attn = attn_implementation or default_attn_implementation(device)
    try:
        config = AutoConfig.from_pretrained(str(ckpt))
    except Exception as err:
        raise ModelLoadError(
            f"{ckpt}/config.json: cannot read a {SUPPORTED_MODEL_TYPES[model_type]} config: {err}"
        ) from err
    config.region_token_index = region_id
    config.image_token_index = image_id
    config.mm_attn_implementation = attn
    model: Any = AutoModelForCausalLM.from_pretrained(
        ckpt, config=config, dtype=dtype, attn_implementation=attn
    )
    model = model.to(device).eval()
    logger.info(
        "loaded %s from %s (%s, %s, attn=%s)", SUPPORTED_MODEL_TYPES[model_type], ckpt, device, dtype, attn
    )
    return model, tokenizer
