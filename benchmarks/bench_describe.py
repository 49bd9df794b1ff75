"""Describe throughput (objects/s) of PixelRefer-Lite or the full PixelRefer: the standard path against the
fast path, batch 1 against the chosen batch, and the vision encoder's TFLOP/s.

    .venv/bin/python benchmarks/bench_describe.py                                  # Lite, tiny, CPU
    .venv/bin/python benchmarks/bench_describe.py --model-kind full                # full, tiny, CPU
    python benchmarks/bench_describe.py --size lite-2b --device cuda --workload scenes --suppress-eos

Models are randomly initialised (no download): `tiny` is the test profile; `lite-2b` / `lite-7b` the released
sizes (Qwen2.5-1.5B / 7B LLM, the 27-layer SigLIP-NaViT), so answers are noise but the compute is the real
one. `--suppress-eos` adds the stop ids to the suppressed tokens, so every answer is exactly
`--max-new-tokens` long and the decode work is honest.

Workloads (Lite): `simple` = --objects objects of --frames 320x240 frames each (a moving rectangle);
`scenes` = --scenes scenes of --frames frames (default 1920x1080) with --objects-per-frame objects each,
every object tracked over all frames, so the objects of a scene share their global views (frame keys).
Full: --videos videos of --frames frames, the objects spread over them (shared vision and prefix prefill).

`gpu_check.py` imports the builders and measurements below; this script prints a table.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from typing import Any

import numpy as np
import torch

from pixelrefer_core.inference import DescribeEngine, DescribeItem
from pixelrefer_core.inference.engine_fast import FastPathOptions
from pixelrefer_core.model import (
    PixelReferConfig,
    PixelReferForCausalLM,
    PixelReferLiteConfig,
    PixelReferLiteForCausalLM,
)
from pixelrefer_core.model.image_processing_pixelrefer import process_image
from pixelrefer_core.model.object_tokens import EncoderStats, encode_packed, encoder_flops
from pixelrefer_core.model.prompting import DETAILED_VIDEO_CAPTION
from pixelrefer_core.model.tiny import build_tiny_model, released_generation_config, tiny_tokenizer
from pixelrefer_core.model.vision_attention import VisionFastPath, fast_path_failures, vision_fast_path

# The released LLM sizes (Lite reference §5.1); vocab 151669 after the token resize (§5.3).
LLM_SIZES: dict[str, dict[str, Any]] = {
    "2b": dict(vocab_size=151669, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
               num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1e6),
    "7b": dict(vocab_size=151669, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
               num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False, rope_theta=1e6),
}
SIZE_ALIASES = {"lite-2b": "2b", "lite-7b": "7b", "2b": "2b", "7b": "7b", "tiny": "tiny"}


def build(model_kind: str, size: str, device: str, seed: int = 0) -> tuple[Any, Any]:
    """(model, tokenizer): the tiny profile, or random weights at a released size (bf16 on CUDA)."""
    size = SIZE_ALIASES[size]
    if size == "tiny":
        tiny: Any
        tiny, tiny_tok = build_tiny_model(seed=seed, model_kind=model_kind)  # type: ignore[arg-type]
        return tiny.to(device), tiny_tok
    tok = tiny_tokenizer()
    fields = dict(
        **LLM_SIZES[size],
        region_token_index=tok.convert_tokens_to_ids("<REGION>"),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        mm_attn_implementation="sdpa",
    )
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(seed)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build in the final dtype: a 7B model in fp32 is 30 GB
    try:
        with torch.device(device):
            if model_kind == "full":
                model: Any = PixelReferForCausalLM(PixelReferConfig(**fields))
            else:
                model = PixelReferLiteForCausalLM(PixelReferLiteConfig(**fields))
    finally:
        torch.set_default_dtype(old)
    model = model.to(dtype).eval()
    model.generation_config = released_generation_config(tok)
    return model, tok


def suppress_eos(model: Any) -> None:
    """Never generate a stop id: every answer is then exactly max_new_tokens long."""
    gen = model.generation_config
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    gen.suppress_tokens = sorted(set(gen.suppress_tokens or []) | {int(e) for e in eos if e is not None})


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
        items.append(DescribeItem(key=k, frames=frames, masks=masks, mask_frame_ids=list(range(frames_per_object)),
                                  question=DETAILED_VIDEO_CAPTION,
                                  timestamps=[0.5 * i for i in range(frames_per_object)]))
    return items


def scene_items(scenes: int, objects_per_frame: int = 20, frames: int = 8, h: int = 1080, w: int = 1920,
                seed: int = 0) -> list[DescribeItem]:
    """A realistic Lite workload: per scene `frames` frames and `objects_per_frame` objects moving over all
    of them (sizes from 2% to 30% of the frame height, so crops vary), each object one item asked the
    detailed caption; the frames carry keys, so a scene's objects share their global views."""
    rng = np.random.default_rng(seed)
    items = []
    for sc in range(scenes):
        clip = _frames(rng, frames, h, w)
        for k in range(objects_per_frame):
            side = int(h * float(np.exp(rng.uniform(np.log(0.02), np.log(0.3)))))
            bh, bw = max(4, side), max(4, int(side * rng.uniform(0.6, 1.6)))
            y0, x0 = rng.uniform(0, h - bh), rng.uniform(0, w - bw)
            vy, vx = rng.uniform(-0.02, 0.02) * h, rng.uniform(-0.02, 0.02) * w
            masks = np.zeros((frames, h, w), dtype=bool)
            for f in range(frames):
                y = int(np.clip(y0 + vy * f, 0, h - bh))
                x = int(np.clip(x0 + vx * f, 0, w - bw))
                masks[f, y : y + bh, x : x + bw] = True
            items.append(DescribeItem(
                key=(sc, k), frames=clip, masks=masks, mask_frame_ids=list(range(frames)),
                question=DETAILED_VIDEO_CAPTION, timestamps=[0.5 * f for f in range(frames)],
                frame_keys=[("scene", sc, f) for f in range(frames)],
            ))
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
        items.append(DescribeItem(key=k, frames=clips[v], masks=mask, mask_frame_ids=[0],
                                  question=DETAILED_VIDEO_CAPTION, timestamps=[0.5 * i for i in range(frames)],
                                  frame_keys=[(v, i) for i in range(frames)], mask_frames=[clips[v][frames // 2]]))
    return items


def sync(device: Any) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure_engine(model: Any, tok: Any, items: list[DescribeItem], *, fast: bool, batch_size: int,
                   max_new_tokens: int, options: FastPathOptions | None = None,
                   reuse_prefix: bool = True) -> dict[str, Any]:
    """One timed `DescribeEngine.run`: objects/s and what the engine reports about the run."""
    engine = DescribeEngine(model, tok, batch_size=batch_size, max_new_tokens=max_new_tokens, fast_path=fast,
                            fast_options=options, reuse_prefix=reuse_prefix)
    sync(model.device)
    start = time.perf_counter()
    results = engine.run(items)
    sync(model.device)
    elapsed = time.perf_counter() - start
    s = engine.last_stats
    tokens = [r.n_tokens for r in results]
    out: dict[str, Any] = {
        "path": "fast" if fast else "standard", "objects": len(items), "batch_size": batch_size,
        "decode_slots": s.decode_slots if fast else batch_size, "seconds": elapsed,
        "objects_per_s": len(items) / elapsed, "tokens_per_object": statistics.mean(tokens) if tokens else 0.0,
        "new_tokens_per_s": sum(tokens) / elapsed, "prefill_tokens_per_object": s.prefill_tokens / max(1, s.items),
        "vision_tflop_per_object": s.vision.flops / 1e12 / max(1, len(items)),
        "vision_tflop_per_wall_s": s.vision.flops / 1e12 / elapsed,
        "encoder_patches_per_object": s.vision.patches_encoded / max(1, len(items)),
        "globals_shared": s.vision.globals_shared,
    }
    if fast:
        out.update(decode_steps=s.decode_steps, refills=s.refills, cuda_graphs=s.cuda_graphs,
                   vision_seconds=s.vision_seconds, prefill_seconds=s.prefill_seconds,
                   decode_seconds=s.decode_seconds)
    if s.vision.timed:
        v = s.vision
        out.update(prepare_seconds=v.prepare_seconds, encode_seconds=v.encode_seconds,
                   region_seconds=v.region_seconds,
                   encoder_tflop_per_s=v.flops / 1e12 / v.encode_seconds if v.encode_seconds else None)
    out["token_ids"] = [r.token_ids for r in results]
    return out


def token_agreement(a: list[list[int]], b: list[list[int]]) -> dict[str, Any]:
    """How far two runs' answers agree: identical answers, and the mean first position where they differ."""
    same = sum(x == y for x, y in zip(a, b, strict=True))
    firsts = []
    for x, y in zip(a, b, strict=True):
        if x != y:
            firsts.append(next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y))))
    return {"identical": same, "of": len(a), "mean_first_difference": statistics.mean(firsts) if firsts else None}


def lite_images(model: Any, items: list[DescribeItem]) -> dict[Any, Any]:
    """The images one packed pass over `items` encodes (crops, locals, shared globals), as the engine
    preprocesses them (`compute_object_tokens`'s keys and budgets)."""
    from pixelrefer_core.model.crops_lite import process_objects
    from pixelrefer_core.model.image_processing_pixelrefer import per_call_max_pixels, smart_resize

    images: dict[Any, Any] = {}
    for r, it in enumerate(items):
        assert it.masks is not None
        saot = process_objects(it.frames, it.masks, it.mask_frame_ids, mask_token_num=model.config.mask_num)
        max_px = per_call_max_pixels(len(saot.objects), model.config.total_max_pixels, model.config.spatial_merge_size)
        for i, obj in enumerate(saot.objects):
            g = saot.global_images[obj.frame_id]
            fkey = it.frame_keys[obj.frame_id] if it.frame_keys else ("request", r, obj.frame_id)
            for key, img in ((("crop", r, i), obj.crop), (("local", r, i), obj.local_image),
                             (("global", fkey, smart_resize(g.shape[0], g.shape[1], max_pixels=max_px)), g)):
                if key not in images:
                    images[key] = process_image(img, max_pixels=max_px)
    return images


def vision_variants(model: Any, images: dict[Any, Any], variants: dict[str, VisionFastPath | None],
                    repeats: int = 5) -> dict[str, Any]:
    """Encoder TFLOP/s of one packed pass over `images` per variant (None = the standard path), median of
    `repeats` timed passes after a warm-up (which includes compiling), and each variant's relative error
    against the standard path's features; `fell_back` names a part (varlen, flex, compile) that failed in
    the variant's warm-up, so that it measured the next choice instead."""
    enc = model.model.vision_encoder
    flops = encoder_flops(enc.config, [img.num_patches for img in images.values()])
    out: dict[str, Any] = {"patches": sum(img.num_patches for img in images.values()), "images": len(images),
                           "tflop_per_pass": flops / 1e12}
    ref = None
    for name, options in variants.items():
        try:
            with torch.inference_mode(), vision_fast_path(options):
                t0 = time.perf_counter()
                feats = encode_packed(enc, images, max_patches=None, device=model.device, dtype=model.dtype,
                                      round_bf16=False, stats=None)
                sync(model.device)
                warm = time.perf_counter() - t0
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    encode_packed(enc, images, max_patches=None, device=model.device, dtype=model.dtype,
                                  round_bf16=False, stats=EncoderStats())
                    sync(model.device)
                    times.append(time.perf_counter() - t0)
            flat = torch.cat([feats[k].float().reshape(-1) for k in images])
            if ref is None:
                ref = flat
            rel = float((flat - ref).norm() / ref.norm())
            med = statistics.median(times)
            out[name] = {"median_s": med, "tflop_per_s": flops / 1e12 / med, "first_call_s": warm, "rel_error": rel}
            wanted = set() if options is None else {options.attention} | ({"compile"} if options.compile else set())
            fell_back = {k: v for k, v in fast_path_failures().items() if k in wanted}
            if fell_back:  # the pass ran the next choice (sdpa, uncompiled): its figures are not this variant's
                out[name]["fell_back"] = fell_back
        except Exception as err:  # noqa: BLE001 - one variant failing is a result, not the end of the check
            out[name] = {"error": f"{type(err).__name__}: {err}"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-kind", choices=["lite", "full"], default="lite")
    ap.add_argument("--size", choices=sorted(SIZE_ALIASES), default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--path", choices=["standard", "fast", "both"], default="both")
    ap.add_argument("--batch-sizes", default="1,4,16")
    ap.add_argument("--workload", choices=["simple", "scenes"], default="simple")
    ap.add_argument("--objects", type=int, default=16)
    ap.add_argument("--scenes", type=int, default=1)
    ap.add_argument("--objects-per-frame", type=int, default=20)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--videos", type=int, default=2, help="full model: videos the objects are spread over")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--suppress-eos", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default 1 on CPU: the tiny model's small ops lose more to thread "
                         "contention on a shared machine than they gain)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_grad_enabled(False)
    threads = args.threads if args.threads is not None else (1 if args.device == "cpu" else None)
    if threads is not None:
        torch.set_num_threads(threads)
    model, tok = build(args.model_kind, args.size, args.device)
    if args.suppress_eos:
        suppress_eos(model)
    if args.model_kind == "full":
        items = full_items(args.objects, args.videos, args.frames)
    elif args.workload == "scenes":
        items = scene_items(args.scenes, args.objects_per_frame, args.frames, args.height, args.width)
    else:
        items = lite_items(args.objects, args.frames)
    print(f"model={args.model_kind} size={args.size} device={args.device} dtype={model.dtype} objects={len(items)} "
          f"frames={args.frames} max_new_tokens={args.max_new_tokens} threads={torch.get_num_threads()}")
    paths = [p for p in ("standard", "fast") if args.path in (p, "both")]
    for p in paths:  # warm-up (and compile, on CUDA)
        measure_engine(model, tok, items[:2], fast=p == "fast", batch_size=2, max_new_tokens=4)
    print(f"{'path':>8} {'batch':>5} {'slots':>5} {'objects/s':>10} {'tokens/obj':>10} {'prefill/obj':>11} "
          f"{'vision TFLOP/obj':>16} {'vision TFLOP/s (wall)':>21}")
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        for p in paths:
            r = measure_engine(model, tok, items, fast=p == "fast", batch_size=bs, max_new_tokens=args.max_new_tokens)
            print(f"{p:>8} {bs:>5} {r['decode_slots']:>5} {r['objects_per_s']:>10.3f} {r['tokens_per_object']:>10.1f} "
                  f"{r['prefill_tokens_per_object']:>11.1f} {r['vision_tflop_per_object']:>16.4f} "
                  f"{r['vision_tflop_per_wall_s']:>21.4f}")


if __name__ == "__main__":
    main()
