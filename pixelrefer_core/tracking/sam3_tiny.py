"""A tiny random SAM 3 in the released format (`facebook/sam3`), for offline tests, demos and benchmarks.

`facebook/sam3` is a `Sam3VideoModel` checkpoint (config `model_type: sam3_video` with a detector and a
tracker config; weights `detector_model.*`, `tracker_model.*`, `tracker_neck.*`) plus a `Sam3Processor`
(image processor + CLIP tokenizer). `save_tiny_sam3` writes the same layout with every width and depth shrunk, so
`Sam3Model.from_pretrained`, `Sam3TrackerVideoModel.from_pretrained` and `Sam3Processor.from_pretrained`
load it exactly as they load the real one. `real_size_config()` is the real architecture (random
weights) for benchmarks.

The tiny tracker's object-score head is biased towards "object present" (random heads hover at 0, and SAM 3
blanks the masks of absent objects), so that propagation with random weights yields masks.
The tokenizer is CLIP's byte-level BPE with the 512 byte symbols and no merges (every character is a
token); the text encoder's vocabulary matches it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from typing import Any

from pixelrefer_core.compat_torchvision import ensure_torchvision

log = logging.getLogger(__name__)

#: Change when `_save` changes what it writes for the same config (part of the cache folder's name).
_RECIPE = "obj-score-bias-2.0;byte-tokenizer"
TINY_IMAGE_SIZE = 112  # 8 x 8 patches of 14 px
_W = 128  # neck, detector heads and tracker: SAM 3's tracker wants more than its 64 memory channels
_V = 32  # width of the image backbone and of the text encoder


def _byte_vocab() -> dict[str, int]:
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab.update({ch + "</w>": len(alphabet) + i for i, ch in enumerate(alphabet)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def tiny_config(image_size: int = TINY_IMAGE_SIZE, vocab_size: int = 514) -> Any:
    """A Sam3VideoConfig with SAM 3's structure, one or two layers per block and widths of 32 / 64."""
    ensure_torchvision()
    from transformers import Sam3VideoConfig

    s, p = image_size, 14
    vit = dict(
        model_type="sam3_vit_model", hidden_size=_V, intermediate_size=2 * _V, num_hidden_layers=2,
        num_attention_heads=2, image_size=s, patch_size=p, window_size=4, global_attn_indexes=[1],
        pretrain_image_size=s,
    )
    vision = dict(
        model_type="sam3_vision_model", backbone_config=vit, fpn_hidden_size=_W,
        backbone_feature_sizes=[[4 * s // p] * 2, [2 * s // p] * 2, [s // p] * 2],
    )
    text = dict(
        model_type="clip_text_model", vocab_size=vocab_size, hidden_size=_V, intermediate_size=2 * _V,
        projection_dim=_V, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
    )
    small = dict(hidden_size=_W, num_layers=1, num_attention_heads=2, intermediate_size=2 * _W)
    detector = dict(
        model_type="sam3", vision_config=vision, text_config=text, geometry_encoder_config=small,
        detr_encoder_config=small, detr_decoder_config=dict(small, num_queries=16),
        mask_decoder_config=dict(hidden_size=_W, num_attention_heads=2),
    )
    tracker = dict(
        model_type="sam3_tracker_video", vision_config=vision, image_size=s,
        prompt_encoder_config=dict(hidden_size=_W, image_size=s, patch_size=p),
        mask_decoder_config=dict(hidden_size=_W, mlp_dim=2 * _W, num_attention_heads=2, iou_head_hidden_dim=_W),
        memory_attention_hidden_size=_W, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=2 * _W, memory_encoder_hidden_size=_W,
        memory_encoder_output_channels=64,  # the memory attention reads 64 channels (hard-coded)
        mask_downsampler_embed_dim=_W, memory_fuser_embed_dim=_W,
        memory_fuser_intermediate_dim=2 * _W,
    )
    return Sam3VideoConfig(detector_config=detector, tracker_config=tracker)


def real_size_config() -> Any:
    """SAM 3 at its released size (1,008 px input; random weights when a model is built from it)."""
    ensure_torchvision()
    from transformers import Sam3VideoConfig

    return Sam3VideoConfig()


def random_parts(config: Any, device: str = "cpu", seed: int = 0) -> Any:
    """Sam3Parts with random weights for `config` (e.g. `real_size_config()`), built in memory: for
    benchmarks at the real size, where writing and reading 3 GB of random weights is only a cost."""
    import torch
    from transformers import (
        CLIPTokenizer,
        Sam3ImageProcessor,
        Sam3Model,
        Sam3Processor,
        Sam3TrackerVideoModel,
    )

    from pixelrefer_core.tracking.sam3_loading import assemble, quiet_transformers

    size = int(config.detector_config.vision_config.backbone_config.image_size)
    with quiet_transformers():
        torch.manual_seed(seed)
        detector = Sam3Model(config.detector_config).eval().to(device)
        tracker = Sam3TrackerVideoModel(config.tracker_config).eval().to(device)
        tracker.vision_encoder.backbone.load_state_dict(detector.vision_encoder.backbone.state_dict())
        processor = Sam3Processor(
            image_processor=Sam3ImageProcessor(size={"height": size, "width": size}),
            tokenizer=CLIPTokenizer(vocab=_byte_vocab(), merges=[], model_max_length=32),
        )
    return assemble(detector, processor, tracker)


def _save(config: Any, out_dir: str, seed: int, image_size: int, tiny: bool = True) -> str:
    import torch
    from transformers import CLIPTokenizer, Sam3ImageProcessor, Sam3Processor, Sam3VideoModel

    torch.manual_seed(seed)
    model = Sam3VideoModel(config).eval()
    if tiny:
        # Random heads score "object absent" about as often as "present", and SAM 3's tracker blanks the mask
        # of an absent object: bias its object-score head to "present" so that propagation yields masks.
        with torch.no_grad():
            model.tracker_model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(2.0)
    tokenizer = CLIPTokenizer(vocab=_byte_vocab(), merges=[], model_max_length=32)
    processor = Sam3Processor(
        image_processor=Sam3ImageProcessor(size={"height": image_size, "width": image_size}), tokenizer=tokenizer
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def save_tiny_sam3(out_dir: str, seed: int = 0) -> str:
    """Write the tiny random SAM 3 (weights drawn from `seed`) and its processor to `out_dir`."""
    from pixelrefer_core.tracking.sam3_loading import quiet_transformers

    os.makedirs(out_dir, exist_ok=True)
    with quiet_transformers():
        return _save(tiny_config(), out_dir, seed, TINY_IMAGE_SIZE)


def tiny_sam3_dir(seed: int = 0) -> str:
    """A cached copy of the tiny SAM 3 of `seed`, written once (atomically) under $PIXELREFER_CACHE or
    ~/.cache/pixelrefer, in a folder named by a digest of its config and recipe."""
    root = os.environ.get("PIXELREFER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "pixelrefer")
    # named by what it holds, so a change of the tiny architecture never reuses an older copy
    digest = hashlib.sha256(tiny_config().to_json_string(use_diff=False).encode() + _RECIPE.encode()).hexdigest()[:12]
    final = os.path.join(root, f"sam3-tiny-{digest}-seed{seed}")
    if os.path.isfile(os.path.join(final, "model.safetensors")):
        return final
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".sam3-tiny-", dir=root)
    try:
        save_tiny_sam3(tmp, seed)
        try:
            os.rename(tmp, final)
        except OSError:  # another process won the race: its copy is the same
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("tiny SAM 3 (seed %d) written to %s", seed, final)
    return final


__all__ = ["TINY_IMAGE_SIZE", "random_parts", "real_size_config", "save_tiny_sam3", "tiny_config", "tiny_sam3_dir"]
