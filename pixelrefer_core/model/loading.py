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
import re
from pathlib import Path
from typing import Any

import torch

from pixelrefer_core.errors import ModelLoadError

from .configuration_pixelrefer import IMAGE_TOKEN, REGION_TOKEN, PixelReferLiteConfig

logger = logging.getLogger(__name__)

# Present in our model, never used by Lite, possibly absent from a checkpoint: allowed to be missing.
OPTIONAL_KEY_PATTERNS = (r"^model\.mm_projector\.", r"^model\.region_encoder\.mask_embedding\.")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.bin", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


def resolve_checkpoint_dir(id_or_dir: str | os.PathLike) -> Path:
    """A local checkpoint directory for `id_or_dir`.

    A local directory is used as is (it must hold `config.json`). Anything that looks like a path
    (absolute, starting with `.` or `~`, or more than one `/`) and does not exist is an error. Otherwise
    `owner/name` is fetched from the hub with `huggingface_hub.snapshot_download` (cached).
    """
    text = str(id_or_dir)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path}: not a checkpoint directory (no config.json)")
        return path
    if path.exists():
        raise ModelLoadError(f"{path}: is a file; pass the checkpoint directory")
    if not _HUB_ID.match(text) or text.startswith((".", "~")):
        raise ModelLoadError(
            f"{text}: no such checkpoint directory (and not a hub id of the form owner/name)"
        )
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=text, allow_patterns=_HUB_PATTERNS))
    except Exception as err:  # network, auth, offline mode, unknown repo
        raise ModelLoadError(f"{text}: not a local directory and the hub download failed: {err}") from err


def check_loading_info(info: dict[str, Any], config: PixelReferLiteConfig, where: str) -> None:
    """Raise ModelLoadError when the checkpoint's keys don't match the model (beyond the allowed gaps)."""
    missing = sorted(info.get("missing_keys") or ())
    unexpected = sorted(info.get("unexpected_keys") or ())
    mismatched = list(info.get("mismatched_keys") or ())
    if config.tie_word_embeddings:
        missing = [k for k in missing if k != "lm_head.weight"]
    allowed = [k for k in missing if any(re.match(p, k) for p in OPTIONAL_KEY_PATTERNS)]
    if allowed:
        logger.info(
            "%s: %d unused Lite weights absent from the checkpoint (initialised randomly)",
            where,
            len(allowed),
        )
    missing = [k for k in missing if k not in allowed]
    problems = []
    if missing:
        problems.append(
            f"missing keys ({len(missing)}): {', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}"
        )
    if unexpected:
        problems.append(
            f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:20])}{' ...' if len(unexpected) > 20 else ''}"
        )
    if mismatched:
        problems.append(f"shape mismatches: {mismatched[:10]}")
    if problems:
        raise ModelLoadError(
            f"{where}: checkpoint does not match PixelReferLiteForCausalLM: " + "; ".join(problems)
        )


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


def _token_id(tokenizer, token: str) -> int | None:
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or (tokenizer.unk_token_id is not None and tid == tokenizer.unk_token_id):
        return None
    return int(tid)


def load_tokenizer(checkpoint_dir: str | os.PathLike):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(checkpoint_dir))
    except Exception as err:
        raise ModelLoadError(f"{checkpoint_dir}: cannot load the tokenizer: {err}") from err


def load_pixelrefer(
    id_or_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
):
    """(model, tokenizer) from a checkpoint directory or hub id, in eval mode on `device`.

    dtype: None -> bf16 on CUDA, fp32 otherwise. attn_implementation: None -> flash_attention_2 on CUDA
    when installed, sdpa otherwise (used by the LLM and the vision encoder).
    Raises ModelLoadError naming the path and the reason.
    """
    from .modeling_pixelrefer import PixelReferLiteForCausalLM

    ckpt = resolve_checkpoint_dir(id_or_dir)
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
    "OPTIONAL_KEY_PATTERNS",
    "check_loading_info",
    "default_attn_implementation",
    "default_dtype",
    "load_pixelrefer",
    "load_tokenizer",
    "resolve_checkpoint_dir",
]
