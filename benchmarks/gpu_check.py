"""The GPU check of issue 15 in one script: describe throughput and vision TFLOP/s at the Lite-2B and Lite-7B
sizes (standard path vs fast path, batch 1 vs the chosen batch), SAM 2.1 hiera-large propagation (ours vs the
sam2 package's predictor, GPU memory at 1x and 10x length), and one end-to-end `pixelrefer run` of a
generated 1-minute 1080p clip with per-stage times. Random weights at the released sizes throughout.

    python benchmarks/gpu_check.py --part compute --out "$OUT"      # describe + tracking (GPU)
    python benchmarks/gpu_check.py --part e2e --out "$OUT"          # the pipeline run (GPU)
    .venv/bin/python benchmarks/gpu_check.py --dry-run --part all   # the same code at tiny sizes on CPU

Results go to `<out>/gpu_check_<part>.json`, rewritten after every section (a run stopped at its time
limit keeps what it measured); the last lines printed are a summary table. `--budget-s` skips the sections
that would start after that many seconds. Preparation (wheels, commands): docs/gpu.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]


@dataclass(frozen=True)
class Plan:
    """Sizes of one check: the GPU run or its CPU dry run."""

    device: str
    sizes: tuple[str, ...]  # describe sections
    scenes: int
    objects_per_frame: int
    frames: int
    height: int
    width: int
    max_new_tokens: int
    batch1_objects: int
    standard_objects: int
    sam2_model: str
    sam2_objects: tuple[int, ...]
    sam2_frames: int
    sam2_size: tuple[int, int]
    clip_seconds: float
    clip_fps: float
    clip_size: tuple[int, int]


GPU = Plan("cuda", ("lite-2b", "lite-7b"), 8, 20, 8, 1080, 1920, 64, 20, 20,
           "large", (1, 8, 32), 32, (720, 1280), 60.0, 25.0, (1080, 1920))
DRY = Plan("cpu", ("tiny",), 1, 4, 4, 240, 320, 8, 2, 4,
           "tiny", (1, 8), 6, (240, 320), 4.0, 10.0, (240, 320))


# ---- helpers ------------------------------------------------------------------------------------------------
def _write_json(path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(tmp, path)


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def _strip_tokens(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "token_ids"}


def top_kernels(run: Callable[[], Any], device: str, limit: int = 15) -> list[dict[str, Any]]:
    """The profiler's busiest ops over one call of `run`: by self device time on CUDA, CPU time otherwise."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=acts) as prof:
        run()
    rows = []
    for e in prof.key_averages():
        dev_us = getattr(e, "self_device_time_total", None)
        if dev_us is None:
            dev_us = getattr(e, "self_cuda_time_total", 0.0)
        rows.append({"name": e.key[:120], "calls": int(e.count), "self_device_ms": float(dev_us or 0.0) / 1e3,
                     "self_cpu_ms": float(e.self_cpu_time_total) / 1e3})
    key = "self_device_ms" if device == "cuda" else "self_cpu_ms"
    total = sum(r[key] for r in rows) or 1.0
    rows.sort(key=lambda r: -r[key])
    for r in rows:
        r["share"] = r[key] / total
    del torch
    return rows[:limit]


# ---- sections -----------------------------------------------------------------------------------------------
def section_env(plan: Plan) -> dict[str, Any]:
    import torch
    import transformers

    out: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count(),
    }
    for name in ("sam2", "prefect", "duckdb", "decord", "av", "pyarrow", "numpy", "triton"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "present")
        except Exception as err:  # noqa: BLE001
            out[name] = f"missing ({type(err).__name__})"
    if plan.device == "cuda":
        p = torch.cuda.get_device_properties(0)
        out.update(gpu=p.name, capability=f"{p.major}.{p.minor}", gpu_memory_gib=p.total_memory / 2**30,
                   multiprocessors=p.multi_processor_count, cuda=torch.version.cuda)
        try:
            out["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.mem,power.limit",
                 "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError) as err:
            out["nvidia_smi"] = f"unavailable: {err}"
        # The two ceilings (METHOD.md): a large bf16 matrix product and a device-to-device copy.
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(10):
            a @ b
        end.record()
        torch.cuda.synchronize()
        out["bf16_matmul_tflop_per_s"] = 10 * 2 * 8192**3 / (start.elapsed_time(end) / 1e3) / 1e12
        x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
        y = torch.empty_like(x)
        y.copy_(x)
        start.record()
        for _ in range(5):
            y.copy_(x)
        end.record()
        torch.cuda.synchronize()
        out["copy_tb_per_s"] = 5 * 2 * x.numel() / (start.elapsed_time(end) / 1e3) / 1e12
        del a, b, x, y
        _free("cuda")
    return out


def section_describe(plan: Plan, size: str) -> dict[str, Any]:
    import torch
    from bench_describe import (
        build,
        lite_images,
        measure_engine,
        scene_items,
        suppress_eos,
        token_agreement,
        vision_variants,
    )

    from pixelrefer_core.inference.engine_fast import FastPathOptions
    from pixelrefer_core.model.vision_attention import VisionFastPath, fast_path_failures

    t0 = time.perf_counter()
    model, tok = build("lite", size, plan.device)
    suppress_eos(model)
    items = scene_items(plan.scenes, plan.objects_per_frame, plan.frames, plan.height, plan.width)
    out: dict[str, Any] = {
        "size": size, "params_b": sum(p.numel() for p in model.parameters()) / 1e9, "dtype": str(model.dtype),
        "workload": {"scenes": plan.scenes, "objects_per_frame": plan.objects_per_frame, "frames_per_object": plan.frames,
                     "frame": [plan.height, plan.width], "max_new_tokens": plan.max_new_tokens, "eos": "suppressed"},
        "build_s": time.perf_counter() - t0,
    }
    scene = items[: plan.objects_per_frame]
    # Vision variants first: their warm-ups compile, and a part that fails there is recorded and skipped
    # by the engine runs below (which are strict: a new failure is an error, not a silent fallback).
    variants: dict[str, VisionFastPath | None] = {"standard": None, "sdpa_fused": VisionFastPath("sdpa")}
    if plan.device == "cuda":
        variants.update(varlen=VisionFastPath("varlen"), varlen_compiled=VisionFastPath("varlen", compile=True),
                        flex_compiled=VisionFastPath("flex", compile=True), sdpa_compiled=VisionFastPath("sdpa", compile=True))
    else:
        variants.update(flex=VisionFastPath("flex"))
    out["vision_pass"] = vision_variants(model, lite_images(model, scene), variants)
    strict = FastPathOptions(strict=True)
    n = plan.objects_per_frame
    t1 = time.perf_counter()
    measure_engine(model, tok, scene, fast=True, batch_size=n, max_new_tokens=plan.max_new_tokens, options=strict)
    out["fast_warmup_s"] = time.perf_counter() - t1
    chosen = measure_engine(model, tok, items, fast=True, batch_size=n, max_new_tokens=plan.max_new_tokens, options=strict)
    timed = measure_engine(model, tok, items[: 2 * n], fast=True, batch_size=n, max_new_tokens=plan.max_new_tokens,
                           options=FastPathOptions(strict=True, timed=True))
    one = measure_engine(model, tok, items[: plan.batch1_objects], fast=True, batch_size=1,
                         max_new_tokens=plan.max_new_tokens, options=FastPathOptions(strict=True, decode_slots=1))
    standard = measure_engine(model, tok, items[: plan.standard_objects], fast=False, batch_size=8,
                              max_new_tokens=plan.max_new_tokens)
    out["agreement_fast_vs_standard"] = token_agreement(chosen["token_ids"][: plan.standard_objects], standard["token_ids"])
    out["fast_chosen"], out["fast_timed"] = _strip_tokens(chosen), _strip_tokens(timed)
    out["fast_batch1"], out["standard_batch8"] = _strip_tokens(one), _strip_tokens(standard)
    out["ratio_chosen_over_batch1"] = chosen["objects_per_s"] / one["objects_per_s"]
    out["ratio_fast_over_standard"] = chosen["objects_per_s"] / standard["objects_per_s"]
    per = max(1, timed["objects"])
    out["breakdown_ms_per_object"] = {k: 1e3 * timed.get(f"{k}_seconds", 0.0) / per for k in
                                      ("prepare", "encode", "region", "vision", "prefill", "decode")}
    out["fast_path_failures"] = fast_path_failures()

    def one_scene() -> None:
        measure_engine(model, tok, scene, fast=True, batch_size=n, max_new_tokens=plan.max_new_tokens, options=strict)

    out["profile_top_ops"] = top_kernels(one_scene, plan.device)
    if plan.device == "cuda":
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out  # the model is freed by the caller's _free once this frame is gone


def section_sam2(plan: Plan) -> dict[str, Any]:
    from bench_tracking import sam2_propagation_bench

    with tempfile.TemporaryDirectory() as work:
        return sam2_propagation_bench(plan.sam2_model, plan.device, plan.sam2_objects, frames=plan.sam2_frames,
                                      height=plan.sam2_size[0], width=plan.sam2_size[1], workdir=work)


def write_clip(path: str, seconds: float, fps: float, size: tuple[int, int], objects: int = 12) -> int:
    """A generated clip streamed to H.264 frame by frame (a 1080p minute never sits in memory): coloured
    boxes crossing a textured background. Returns the frame count."""
    import av
    import numpy as np

    h, w = size
    rng = np.random.default_rng(0)
    bg = (rng.normal(90, 12, (h // 8, w // 8, 3)).clip(0, 255).astype(np.uint8)).repeat(8, 0).repeat(8, 1)
    sizes = rng.integers(h // 12, h // 4, objects)
    start = np.stack([rng.uniform(0, h), rng.uniform(0, w)], 1)
    vel = rng.uniform(-3, 3, (objects, 2)) * (h / 240)
    colors = rng.integers(30, 250, (objects, 3))
    n = int(seconds * fps)
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", "g": str(int(fps))}
        for f in range(n):
            img = bg.copy()
            for k in range(objects):
                s = int(sizes[k])
                y, x = (start[k] + vel[k] * f) % np.array([h - s, w - s])
                img[int(y) : int(y) + s, int(x) : int(x) + s] = colors[k]
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return n


def section_e2e(plan: Plan) -> dict[str, Any]:
    work = tempfile.mkdtemp(prefix="e2e-")
    archive = os.path.join(work, "archive")
    os.makedirs(archive)
    t0 = time.perf_counter()
    frames = write_clip(os.path.join(archive, "clip.mp4"), plan.clip_seconds, plan.clip_fps, plan.clip_size)
    out: dict[str, Any] = {"clip": {"seconds": plan.clip_seconds, "fps": plan.clip_fps, "frames": frames,
                                    "size": list(plan.clip_size)}, "clip_write_s": time.perf_counter() - t0}
    cmd = [sys.executable, "-m", "flows.cli", "run", archive, "--store", os.path.join(work, "store"),
           "--device", plan.device, "--segmenter", "motion"]
    if plan.device == "cuda":
        from bench_describe import build

        t0 = time.perf_counter()
        model, tok = build("lite", "lite-2b", "cuda")
        ckpt = os.path.join(work, "pixelrefer-lite-2b-random")
        model.save_pretrained(ckpt)
        tok.save_pretrained(ckpt)
        del model
        _free("cuda")
        out["checkpoint_write_s"] = time.perf_counter() - t0
        cmd += ["--model", ckpt]
    else:
        cmd += ["--profile", "tiny"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
           "PREFECT_HOME": os.path.join(work, "prefect-home"), "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    out.update(command=" ".join(cmd[1:]), returncode=proc.returncode, wall_s=time.perf_counter() - t0,
               output_tail=(proc.stdout + proc.stderr)[-3000:])
    m = re.search(r"time: (.*)", proc.stdout)
    if m:
        out["stage_seconds"] = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+) s", m.group(1))}
    for key, pattern in (("objects_tracked", r"objects: (\d+) tracked"), ("descriptions", r"descriptions: (\d+) written")):
        found = re.search(pattern, proc.stdout)
        if found:
            out[key] = int(found.group(1))
    if proc.returncode != 0:
        raise RuntimeError(f"pixelrefer run exited {proc.returncode}: {out['output_tail'][-800:]}")
    return out


# ---- the run ---------------------------------------------------------------------------------------------------
def _summary(results: dict[str, Any]) -> list[str]:
    lines = [f"{'section':<14} {'status':<8} {'seconds':>8}  figures"]
    for name, sec in results["sections"].items():
        r = sec.get("result", {})
        figs = ""
        if name.startswith("describe:") and r:
            vp = r.get("vision_pass", {})
            best = max((v.get("tflop_per_s", 0.0) for v in vp.values() if isinstance(v, dict)), default=0.0)
            figs = (f"fast {r['fast_chosen']['objects_per_s']:.2f} obj/s (slots {r['fast_chosen']['decode_slots']}), "
                    f"batch 1 {r['fast_batch1']['objects_per_s']:.2f}, standard b8 {r['standard_batch8']['objects_per_s']:.2f}, "
                    f"encoder best {best:.1f} TFLOP/s")
        elif name == "sam2" and r:
            figs = ", ".join(f"{n} obj {row['ours']['frames_per_s']:.1f} vs {row['sam2_predictor']['frames_per_s']:.1f} f/s"
                             for n, row in r["by_objects"].items())
        elif name == "e2e" and r:
            figs = f"stages {r.get('stage_seconds')}, {r.get('objects_tracked')} objects, {r.get('descriptions')} descriptions"
        elif name == "env" and r:
            figs = f"{r.get('gpu', 'cpu')} torch {r['torch']} transformers {r['transformers']}"
        lines.append(f"{name:<14} {sec['status']:<8} {sec.get('seconds', 0):>8.1f}  {figs}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["compute", "e2e", "all"], default="all")
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(HERE, "results"))
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (checks the script end to end)")
    ap.add_argument("--budget-s", type=float, default=520.0, help="start no section after this many seconds")
    ap.add_argument("--sections", help="comma list overriding the part's sections (env, describe:SIZE, sam2, e2e)")
    args = ap.parse_args()
    plan = DRY if args.dry_run else GPU
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            print("no CUDA device: run with --dry-run on a CPU machine", file=sys.stderr)
            return 2
    else:
        import torch

        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    sections = ["env"]
    if args.part in ("compute", "all"):
        sections += [f"describe:{s}" for s in plan.sizes] + ["sam2"]
    if args.part in ("e2e", "all"):
        sections += ["e2e"]
    if args.sections:
        sections = args.sections.split(",")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"gpu_check_{args.part}{'_cpu_dry_run' if args.dry_run else ''}.json")
    results: dict[str, Any] = {
        "label": ("CPU DRY RUN at tiny sizes: checks that the script runs end to end; these are NOT GPU figures"
                  if args.dry_run else "GPU check (random weights at the released sizes)"),
        "dry_run": args.dry_run, "part": args.part, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "plan": plan.__dict__, "sections": {},
    }
    start = time.perf_counter()
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "env": lambda: section_env(plan), "sam2": lambda: section_sam2(plan), "e2e": lambda: section_e2e(plan)}
    for name in sections:
        if name.startswith("describe:"):
            runners[name] = functools.partial(section_describe, plan, name.split(":", 1)[1])
        if time.perf_counter() - start > args.budget_s:
            results["sections"][name] = {"status": "skipped", "reason": f"past the {args.budget_s:.0f} s budget"}
            continue
        t0 = time.perf_counter()
        print(f"[{time.perf_counter() - start:6.1f} s] {name} ...", flush=True)
        try:
            results["sections"][name] = {"status": "ok", "result": runners[name]()}
        except Exception as err:  # noqa: BLE001 - a failed section is a result; the others still run
            results["sections"][name] = {"status": "error", "error": f"{type(err).__name__}: {err}",
                                         "traceback": traceback.format_exc()[-4000:]}
        _free(plan.device)  # the section's models are unreachable now: give their memory back
        results["sections"][name]["seconds"] = time.perf_counter() - t0
        results["total_s"] = time.perf_counter() - start
        _write_json(path, results)
    print("\n".join(_summary(results)))
    print(f"results: {path}")
    return 0 if all(s["status"] == "ok" for s in results["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
