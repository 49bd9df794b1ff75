"""Describe throughput (objects/s) against batch size, for PixelRefer-Lite or the full PixelRefer.

    .venv/bin/python benchmarks/bench_describe.py                                   # Lite, tiny, CPU
    .venv/bin/python benchmarks/bench_describe.py --model-kind full                 # full, tiny, CPU
    .venv/bin/python benchmarks/bench_describe.py --model-kind full --size 2b --device cuda   # 2B-sized

Models are randomly initialised (no download): `tiny` is the test profile, `2b` the released 2B sizes
(Qwen2.5-1.5B LLM, 27-layer SigLIP-NaViT), so answers are noise but the compute is the real one.

Lite: each object is --frames frames (320x240, a moving rectangle mask on every frame) asked the detailed
video caption; also reports the vision encoder's effective TFLOP/s on a separate, timed
`compute_object_tokens` call over one batch.
Full: --videos videos of --frames frames each (320x240, with timestamps), the objects spread over them; each
object has one mask on an annotated frame of its video and is asked the detailed video caption. Objects
of one video share its vision tokens and (with prefix reuse) the prefill of the chat header + video
tokens; the table shows objects/s with and without prefix reuse, and the LLM positions prefilled per
object both ways (`EngineStats.prefill_tokens` vs `prefill_tokens_one_at_a_time`).
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np
import torch

from pixelrefer_core.inference import DescribeEngine, DescribeItem
from pixelrefer_core.model import (
    PixelReferConfig,
    PixelReferForCausalLM,
    PixelReferLiteConfig,
    PixelReferLiteForCausalLM,
)
from pixelrefer_core.model.object_tokens import EncoderStats, ObjectTokenRequest, compute_object_tokens
from pixelrefer_core.model.prompting import DETAILED_VIDEO_CAPTION
from pixelrefer_core.model.tiny import build_tiny_model, released_generation_config, tiny_tokenizer

SIZE_2B = dict(
    vocab_size=151669,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    tie_word_embeddings=True,
    rope_theta=1e6,
)


def build(model_kind: str, size: str, device: str) -> tuple[Any, Any]:
    if size == "tiny":
        model, tok = build_tiny_model(seed=0, model_kind=model_kind)  # type: ignore[arg-type]
        return model.to(device), tok
    tok = tiny_tokenizer()
    fields = dict(
        **SIZE_2B,
        region_token_index=tok.convert_tokens_to_ids("<REGION>"),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        mm_attn_implementation="flash_attention_2" if device == "cuda" else "sdpa",
    )
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        if model_kind == "full":
            model: Any = PixelReferForCausalLM(PixelReferConfig(**fields))
        else:
            model = PixelReferLiteForCausalLM(PixelReferLiteConfig(**fields))
    model = model.to(dtype).eval()
    model.generation_config = released_generation_config(tok)
    return model, tok


def _frames(rng: np.random.Generator, n: int, h: int, w: int) -> list[np.ndarray]:
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def lite_items(n: int, frames_per_object: int, h: int = 240, w: int = 320) -> list[DescribeItem]:
    rng = np.random.default_rng(0)
    items = []
    for k in range(n):
        frames = _frames(rng, frames_per_object, h, w)
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


def full_items(n: int, videos: int, frames: int, h: int = 240, w: int = 320) -> list[DescribeItem]:
    rng = np.random.default_rng(0)
    clips = [_frames(rng, frames, h, w) for _ in range(videos)]
    items = []
    for k in range(n):
        v = k % videos
        mask = np.zeros((1, h, w), dtype=bool)
        size = 30 + 5 * (k % 8)
        y, x = 30 + 7 * (k // videos) % 150, 20 + 11 * (k // videos) % 230
        mask[0, y : y + size, x : x + size + 10] = True
        items.append(
            DescribeItem(
                key=k,
                frames=clips[v],
                masks=mask,
                mask_frame_ids=[0],
                question=DETAILED_VIDEO_CAPTION,
                timestamps=[0.5 * i for i in range(frames)],
                frame_keys=[(v, i) for i in range(frames)],
                mask_frames=[clips[v][frames // 2]],
            )
        )
    return items


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def vision_tflops(model: Any, items: list[DescribeItem], device: str) -> float:
    reqs = [ObjectTokenRequest(it.frames, it.masks, it.mask_frame_ids) for it in items]  # type: ignore[arg-type]
    enc, reg = model.model.vision_encoder, model.model.region_encoder
    compute_object_tokens(
        enc, reg, reqs, mask_num=model.config.mask_num, device=model.device, dtype=model.dtype
    )
    sync(device)
    stats = EncoderStats()
    start = time.perf_counter()
    compute_object_tokens(
        enc, reg, reqs, mask_num=model.config.mask_num, device=model.device, dtype=model.dtype, stats=stats
    )
    sync(device)
    return stats.flops / (time.perf_counter() - start) / 1e12


def timed_run(engine: DescribeEngine, items: list[DescribeItem], device: str) -> tuple[float, list[Any]]:
    sync(device)
    start = time.perf_counter()
    results = engine.run(items)
    sync(device)
    return time.perf_counter() - start, results


def bench_lite(model: Any, tok: Any, args: argparse.Namespace, batch_sizes: list[int]) -> None:
    items = lite_items(args.objects, args.frames)
    DescribeEngine(model, tok, batch_size=1, max_new_tokens=4).run(items[:1])  # warm-up
    print(f"{'batch':>5} {'objects/s':>10} {'s/object':>9} {'tokens/obj':>10} {'vision TFLOP/s':>15}")
    for bs in batch_sizes:
        engine = DescribeEngine(model, tok, batch_size=bs, max_new_tokens=args.max_new_tokens)
        elapsed, results = timed_run(engine, items, args.device)
        tflops = vision_tflops(model, items[:bs], args.device)
        mean_tokens = sum(r.n_tokens for r in results) / len(results)
        print(
            f"{bs:>5} {len(items) / elapsed:>10.3f} {elapsed / len(items):>9.3f} {mean_tokens:>10.1f} {tflops:>15.4f}"
        )


def bench_full(model: Any, tok: Any, args: argparse.Namespace, batch_sizes: list[int]) -> None:
    items = full_items(args.objects, args.videos, args.frames)
    DescribeEngine(model, tok, batch_size=1, max_new_tokens=4).run(items[:1])  # warm-up
    print(f"videos={args.videos} objects/video={args.objects / args.videos:.1f}")
    print(
        f"{'batch':>5} {'reuse':>5} {'objects/s':>10} {'s/object':>9} {'prefill/obj':>11} "
        f"{'one-at-a-time/obj':>17} {'saved':>6} {'vision TFLOP':>12}"
    )
    for bs in batch_sizes:
        for reuse in (True, False):
            engine = DescribeEngine(
                model, tok, batch_size=bs, max_new_tokens=args.max_new_tokens, reuse_prefix=reuse
            )
            elapsed, _ = timed_run(engine, items, args.device)
            s = engine.last_stats
            print(
                f"{bs:>5} {'yes' if reuse else 'no':>5} {len(items) / elapsed:>10.3f} {elapsed / len(items):>9.3f} "
                f"{s.prefill_tokens / s.items:>11.1f} {s.prefill_tokens_one_at_a_time / s.items:>17.1f} "
                f"{s.prefill_saved:>6.1%} {s.vision.flops / 1e12:>12.4f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-kind", choices=["lite", "full"], default="lite")
    ap.add_argument("--size", choices=["tiny", "2b", "lite-2b"], default="tiny", help="lite-2b: alias of 2b")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-sizes", default="1,2,4,8,16")
    ap.add_argument("--objects", type=int, default=16)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--videos", type=int, default=2, help="full model: videos the objects are spread over")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default 1 on CPU: the tiny model's small "
        "ops lose more to thread contention on a shared machine than they gain)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_grad_enabled(False)
    threads = args.threads if args.threads is not None else (1 if args.device == "cpu" else None)
    if threads is not None:
        torch.set_num_threads(threads)
    size = "2b" if args.size == "lite-2b" else args.size
    model, tok = build(args.model_kind, size, args.device)
    print(
        f"model={args.model_kind} size={size} device={args.device} dtype={model.dtype} objects={args.objects} "
        f"frames={args.frames} max_new_tokens={args.max_new_tokens} threads={torch.get_num_threads()}"
    )
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.model_kind == "full":
        bench_full(model, tok, args, batch_sizes)
    else:
        bench_lite(model, tok, args, batch_sizes)


if __name__ == "__main__":
    main()
