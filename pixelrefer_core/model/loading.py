"""Loading PixelRefer-Lite checkpoints: a local directory or a Hugging Face hub id.

`load_pixelrefer` resolves the directory (hub download only when the argument is not a local path),
loads the tokenizer, writes the `<REGION>`/`<image>` ids it finds into the config, and loads the weights
with transformers' own `from_pretrained` (which reads `model.safetensors`, `pytorch_model.bin`, and their
sharded forms with an index json; a missing `lm_head.weight` is tied to the embeddings when
`tie_word_embeddings`). Key mismatches are reported as ModelLoadError listing the missing/unexpected keys.
The vision encoder is built from the checkpoint's own config: nothing else is downloaded.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from pixelrefer_core.errors import ModelLoadError

from .checkpoints import resolve_checkpoint
from .configuration_pixelrefer import IMAGE_TOKEN, REGION_TOKEN, PixelReferLiteConfig

logger = logging.getLogger(__name__)


def default_dtype(device: str | torch.device) -> torch.dtype:
    """bf16 on CUDA (the released dtype), fp32 elsewhere."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def default_attn_implementation(device: str | torch.device) -> str:
    """flash_attention_2 on CUDA when flash_attn imports, else sdpa."""
    if torch.device(device).type == "cuda":
        try:
            import flash_attn  # noqa: F401  # type: ignore[import-not-found]

            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


def _token_id(tokenizer: Any, token: str) -> int | None:
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or (tokenizer.unk_token_id is not None and tid == tokenizer.unk_token_id):
        return None
    return int(tid)


def load_tokenizer(checkpoint_dir: str | os.PathLike[str]) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(checkpoint_dir))
    except Exception as err:
        raise ModelLoadError(f"{checkpoint_dir}: cannot load the tokenizer: {err}") from err


def load_pixelrefer(
    id_or_dir: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[Any, Any]:
    """(model, tokenizer) from a checkpoint directory or hub id, in eval mode on `device`.

    dtype: None -> bf16 on CUDA, fp32 otherwise. attn_implementation: None -> flash_attention_2 on CUDA
    when installed, sdpa otherwise (used by the LLM and the vision encoder). revision: the hub revision
    (branch, tag or commit) to download; `resolve_checkpoint(id_or_dir, revision).model_id` is the
    identity of what is loaded. Raises ModelLoadError naming the path and the reason.
    """
    from .modeling_pixelrefer import PixelReferLiteForCausalLM

    ckpt = resolve_checkpoint(id_or_dir, revision, cache_dir=cache_dir).path
    tokenizer = load_tokenizer(ckpt)
    region_id = _token_id(tokenizer, REGION_TOKEN)
    if region_id is None:
        raise ModelLoadError(
            f"{ckpt}: the tokenizer has no {REGION_TOKEN} token; not a PixelRefer checkpoint"
        )
    dtype = dtype or default_dtype(device)
    attn = attn_implementation or default_attn_implementation(device)
    try:
        config = PixelReferLiteConfig.from_pretrained(str(ckpt))
    except Exception as err:
        raise ModelLoadError(f"{ckpt}/config.json: cannot read a PixelRefer-Lite config: {err}") from err
    config.region_token_index = region_id
    config.image_token_index = _token_id(tokenizer, IMAGE_TOKEN)
    config.mm_attn_implementation = attn
    model = PixelReferLiteForCausalLM.from_pretrained(
        ckpt, config=config, dtype=dtype, attn_implementation=attn
    )
    model = model.to(device).eval()
    logger.info("loaded PixelRefer-Lite from %s (%s, %s, attn=%s)", ckpt, device, dtype, attn)
    return model, tokenizer


__all__ = [
    "default_attn_implementation",
    "default_dtype",
    "load_pixelrefer",
    "load_tokenizer",
]
