"""Describe throughput (objects/s) against batch size, with the vision encoder's effective TFLOP/s.

    .venv/bin/python benchmarks/bench_describe.py                          # tiny model, CPU
    .venv/bin/python benchmarks/bench_describe.py --size lite-2b --device cuda   # Lite-2B-sized, random weights

Each object is 8 frames (320x240, a moving rectangle mask) described with the detailed video caption
prompt, greedy, up to --max-new-tokens tokens. Lite-2B is built randomly initialised from the released
sizes (no download); its answers are noise but its compute is the real one. Vision TFLOP/s is measured
on a separate, timed `compute_object_tokens` call over one batch of requests (FLOPs estimated from the
patch counts and the encoder config by `object_tokens.encoder_flops`).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch

from pixelrefer_core.inference import DescribeEngine, DescribeItem
from pixelrefer_core.model import PixelReferLiteConfig, PixelReferLiteForCausalLM
from pixelrefer_core.model.object_tokens import EncoderStats, ObjectTokenRequest, compute_object_tokens
from pixelrefer_core.model.prompting import DETAILED_VIDEO_CAPTION
from pixelrefer_core.model.tiny import build_tiny_model, released_generation_config, tiny_tokenizer

LITE_2B = dict(
    vocab_size=151669,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    tie_word_embeddings=True,
    rope_theta=1e6,
)


def build(size: str, device: str):
    if size == "tiny":
        model, tok = build_tiny_model(seed=0)
        return model.to(device), tok
    tok = tiny_tokenizer()
    config = PixelReferLiteConfig(
        **LITE_2B,
        region_token_index=tok.convert_tokens_to_ids("<REGION>"),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        mm_attn_implementation="flash_attention_2" if device == "cuda" else "sdpa",
    )
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = PixelReferLiteForCausalLM(config)
    model = model.to(dtype).eval()
    model.generation_config = released_generation_config(tok)
    return model, tok


def make_items(n: int, frames_per_object: int, h: int = 240, w: int = 320) -> list[DescribeItem]:
    rng = np.random.default_rng(0)
    items = []
    for k in range(n):
        frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(frames_per_object)]
        masks = np.zeros((frames_per_object, h, w), dtype=bool)
        size = 30 + 5 * (k % 8)
        for i in range(frames_per_object):
            y, x = 40 + 3 * i, 20 + 10 * i + k
            masks[i, y : y + size, x : x + size + 10] = True
        items.append(
            DescribeItem(
                key=k,
                frames=frames,
                masks=masks,
                mask_frame_ids=list(range(frames_per_object)),
                question=DETAILED_VIDEO_CAPTION,
                timestamps=[0.5 * i for i in range(frames_per_object)],
            )
        )
    return items


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def vision_tflops(model, items, device: str) -> float:
    reqs = [ObjectTokenRequest(it.frames, it.masks, it.mask_frame_ids) for it in items]
    enc, reg = model.model.vision_encoder, model.model.region_encoder
    stats = EncoderStats()
    compute_object_tokens(
        enc, reg, reqs, mask_num=model.config.mask_num, device=model.device, dtype=model.dtype
    )
    sync(device)
    start = time.perf_counter()
    compute_object_tokens(
        enc, reg, reqs, mask_num=model.config.mask_num, device=model.device, dtype=model.dtype, stats=stats
    )
    sync(device)
    return stats.flops / (time.perf_counter() - start) / 1e12


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["tiny", "lite-2b"], default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-sizes", default="1,2,4,8,16")
    ap.add_argument("--objects", type=int, default=16)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_grad_enabled(False)
    model, tok = build(args.size, args.device)
    items = make_items(args.objects, args.frames)
    DescribeEngine(model, tok, batch_size=1, max_new_tokens=4).run(items[:1])  # warm-up
    print(
        f"size={args.size} device={args.device} dtype={model.dtype} objects={args.objects} frames={args.frames}"
    )
    print(f"{'batch':>5} {'objects/s':>10} {'s/object':>9} {'tokens/obj':>10} {'vision TFLOP/s':>15}")
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        engine = DescribeEngine(model, tok, batch_size=bs, max_new_tokens=args.max_new_tokens)
        sync(args.device)
        start = time.perf_counter()
        results = engine.run(items)
        sync(args.device)
        elapsed = time.perf_counter() - start
        tflops = vision_tflops(model, items[:bs], args.device)
        mean_tokens = sum(r.n_tokens for r in results) / len(results)
        print(
            f"{bs:>5} {len(items) / elapsed:>10.3f} {elapsed / len(items):>9.3f} {mean_tokens:>10.1f} {tflops:>15.4f}"
        )


if __name__ == "__main__":
    main()
