"""The GPU check of issue 15 in one call: describe throughput and vision TFLOP/s at the Lite-2B and Lite-7B
sizes (today's path vs the fast path, batch 1 vs the chosen batch, EOS suppressed), SAM 2.1 hiera-large
propagation (ours vs the sam2 package's predictor for 1 / 8 / 32 objects, GPU memory at 1x and 10x length),
and one end-to-end `pixelrefer run` of a generated 1-minute 1080p clip with per-stage times. Random weights
at the released sizes throughout (nothing is downloaded).

    python benchmarks/gpu_check.py --out "$OUT"                        # everything, ~9 min on one H200
    python benchmarks/gpu_check.py --part compute --out "$OUT"         # describe + tracking only
    python benchmarks/gpu_check.py --sections env,describe:lite-2b     # a chosen subset
    .venv/bin/python benchmarks/gpu_check.py --dry-run --out /tmp/dry  # every section at tiny sizes on CPU

Each section runs in its own Python process with its own time limit (a hang, a crash or a CUDA error in one
loses nothing of the others, and each starts with an empty GPU). A section saves its figures as it
measures them, so one stopped at its limit keeps what it had. Results: `<out>/gpu_check_<part>.json`
(rewritten after every section) and the sections' output in `<out>/gpu_check_<part>.log`; the last lines
printed are a summary table. `--budget-s` is the time for the whole call: each section gets its share
(`SECTION_SHARE_S`) plus whatever the sections before it left unused. How to run it on the device
machine (wheels to carry, the exact command): docs/models.md, "GPU fast path and gpu_check".
"""

from __future__ import annotations

import argparse
import datetime as dt
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
from dataclasses import asdict, dataclass
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
    vision_repeats: int
    sam2_model: str
    sam2_objects: tuple[int, ...]
    sam2_frames: int
    sam2_long_factor: int
    sam2_size: tuple[int, int]
    clip_seconds: float
    clip_fps: float
    clip_size: tuple[int, int]


# The scene: 20 objects per frame, 8 frames per object, 1080p frames, captions of 64 new tokens.
GPU = Plan("cuda", ("lite-2b", "lite-7b"), 8, 20, 8, 1080, 1920, 64, 10, 16, 5,
           "large", (1, 8, 32), 32, 10, (720, 1280), 60.0, 25.0, (1080, 1920))
# The dry run: the same code at the tiny profile on small frames (seconds per section on 2 CPU cores).
DRY = Plan("cpu", ("tiny",), 1, 3, 2, 120, 160, 4, 2, 3, 1,
           "tiny", (1, 2), 3, 2, (120, 160), 8.0, 8.0, (144, 192))

# Seconds each section may take in the GPU run (scaled to --budget-s); time a section leaves unused goes
# to the next ones.
SECTION_SHARE_S = {"env": 30.0, "describe:lite-2b": 150.0, "describe:lite-7b": 130.0, "sam2": 100.0, "e2e": 130.0}


class LiveResult(dict[str, Any]):
    """A section's result dict that writes itself (atomically, as JSON) to `path` on every top-level
    assignment: a section stopped at its time limit keeps the figures it had measured."""

    def __init__(self, path: str | None):
        super().__init__()
        self.path = path

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.save()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self.save()

    def save(self) -> None:
        if self.path:
            _write_json(self.path, dict(self))


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
def section_env(plan: Plan, result: LiveResult) -> None:
    import torch
    import transformers

    out = result
    out.update({
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count(),
        "device": plan.device,
    })
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


def section_describe(plan: Plan, size: str, out: LiveResult) -> None:
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
    out.update({
        "size": size, "params_b": sum(p.numel() for p in model.parameters()) / 1e9, "dtype": str(model.dtype),
        "workload": {"scenes": plan.scenes, "objects_per_frame": plan.objects_per_frame, "frames_per_object": plan.frames,
                     "frame": [plan.height, plan.width], "max_new_tokens": plan.max_new_tokens, "eos": "suppressed"},
        "build_s": time.perf_counter() - t0,
    })
    scene = items[: plan.objects_per_frame]
    # Vision variants first: their warm-ups compile, and a part that fails there is recorded (and its
    # variant marked `fell_back`) and skipped by the engine runs below, which are strict: a new failure
    # there is an error, not a silent fallback to today's path.
    variants: dict[str, VisionFastPath | None] = {"standard": None, "sdpa_fused": VisionFastPath("sdpa")}
    if plan.device == "cuda":
        variants.update(varlen=VisionFastPath("varlen"), varlen_compiled=VisionFastPath("varlen", compile=True),
                        flex_compiled=VisionFastPath("flex", compile=True))
    # (flex uncompiled is left out: eager FlexAttention materialises the scores, a minute per pass on CPU;
    # tests/inference/test_vision_fast.py checks its numbers on a small batch.)
    out["vision_pass"] = vision_variants(model, lite_images(model, scene), variants, repeats=plan.vision_repeats)
    strict = FastPathOptions(strict=True)
    n = plan.objects_per_frame
    new = plan.max_new_tokens

    t1 = time.perf_counter()
    measure_engine(model, tok, scene, fast=True, batch_size=n, max_new_tokens=new, options=strict)
    out["fast_warmup_s"] = time.perf_counter() - t1
    chosen = measure_engine(model, tok, items, fast=True, batch_size=n, max_new_tokens=new, options=strict)
    out["fast_chosen"] = _strip_tokens(chosen)
    one = measure_engine(model, tok, items[: plan.batch1_objects], fast=True, batch_size=1, max_new_tokens=new,
                         options=FastPathOptions(strict=True, decode_slots=1))
    out["fast_batch1"] = _strip_tokens(one)
    out["ratio_chosen_over_batch1"] = chosen["objects_per_s"] / one["objects_per_s"]
    standard = measure_engine(model, tok, items[: plan.standard_objects], fast=False, batch_size=8, max_new_tokens=new)
    out["standard_batch8"] = _strip_tokens(standard)
    out["ratio_fast_over_standard"] = chosen["objects_per_s"] / standard["objects_per_s"]
    out["agreement_fast_vs_standard"] = token_agreement(chosen["token_ids"][: plan.standard_objects], standard["token_ids"])
    timed = measure_engine(model, tok, items[: 2 * n], fast=True, batch_size=n, max_new_tokens=new,
                           options=FastPathOptions(strict=True, timed=True))
    out["fast_timed"] = _strip_tokens(timed)
    per = max(1, timed["objects"])
    out["breakdown_ms_per_object"] = {k: 1e3 * (timed.get(f"{k}_seconds") or 0.0) / per for k in
                                      ("prepare", "encode", "region", "vision", "prefill", "decode")}
    out["fast_path_failures"] = fast_path_failures()

    def one_scene() -> None:
        measure_engine(model, tok, scene, fast=True, batch_size=n, max_new_tokens=new, options=strict)

    out["profile_top_ops"] = top_kernels(one_scene, plan.device)
    if plan.device == "cuda":
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30


def section_sam2(plan: Plan, out: LiveResult) -> None:
    from sam2_propagation import sam2_propagation_bench

    with tempfile.TemporaryDirectory() as work:
        sam2_propagation_bench(plan.sam2_model, plan.device, plan.sam2_objects, frames=plan.sam2_frames,
                               long_factor=plan.sam2_long_factor, long_objects=max(plan.sam2_objects[:2]),
                               chunk=min(16, plan.sam2_frames), height=plan.sam2_size[0], width=plan.sam2_size[1],
                               workdir=work, out=out)


def write_clip(path: str, seconds: float, fps: float, size: tuple[int, int], objects: int = 12
               ) -> tuple[int, list[list[float]]]:
    """A generated clip streamed to H.264 frame by frame (a 1080p minute never sits in memory): coloured
    boxes crossing a textured background. Returns the frame count and each box on frame 0 ([x0, y0, x1, y1])."""
    import av
    import numpy as np

    h, w = size
    rng = np.random.default_rng(0)
    bg = (rng.normal(90, 12, (h // 8, w // 8, 3)).clip(0, 255).astype(np.uint8)).repeat(8, 0).repeat(8, 1)
    bg = np.ascontiguousarray(np.pad(bg, ((0, h - bg.shape[0]), (0, w - bg.shape[1]), (0, 0)), mode="edge"))
    sizes = rng.integers(h // 12, h // 4, objects)
    start = np.stack([rng.uniform(0, h, objects), rng.uniform(0, w, objects)], 1)
    vel = rng.uniform(-6, 6, (objects, 2)) * (h / 240)  # pixels per frame: visible motion at 2 sampled fps
    colors = rng.integers(30, 250, (objects, 3))

    def corner(f: int, k: int) -> tuple[int, int]:
        s = int(sizes[k])
        y, x = (start[k] + vel[k] * f) % np.array([h - s, w - s])
        return int(y), int(x)

    n = int(seconds * fps)
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", "g": str(int(fps))}
        for f in range(n):
            img = bg.copy()
            for k in range(objects):
                s = int(sizes[k])
                y, x = corner(f, k)
                img[y : y + s, x : x + s] = colors[k]
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    boxes = []
    for k in range(objects):
        y, x = corner(0, k)
        boxes.append([float(x), float(y), float(x + int(sizes[k])), float(y + int(sizes[k]))])
    return n, boxes


def _random_checkpoints(plan: Plan, work: str, out: LiveResult) -> list[str]:
    """`pixelrefer run` arguments naming random-weight checkpoints written to `work`: Lite-2B and SAM 2.1
    hiera-large on the GPU; the tiny Lite model (and the motion segmenter) in the dry run. Both go through
    the real loading code, as released checkpoints would."""
    import torch
    from bench_describe import build

    t0 = time.perf_counter()
    model, tok = build("lite", "lite-2b" if plan.device == "cuda" else "tiny", plan.device)
    ckpt = os.path.join(work, "pixelrefer-lite-random")
    model.save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    del model
    _free(plan.device)
    args = ["--model", ckpt]
    if plan.device == "cuda":
        from sam2.build_sam import build_sam2_video_predictor
        from sam2_propagation import SAM2_CONFIGS

        torch.manual_seed(0)
        sam = build_sam2_video_predictor(SAM2_CONFIGS["large"], ckpt_path=None, device="cpu", apply_postprocessing=False)
        sam_ckpt = os.path.join(work, "sam2.1_hiera_large.pt")
        torch.save({"model": sam.state_dict()}, sam_ckpt)
        del sam
        args += ["--segmenter", "sam2", "--sam2", sam_ckpt]
    else:
        args += ["--segmenter", "motion"]
    out["checkpoint_write_s"] = time.perf_counter() - t0
    return args


def section_e2e(plan: Plan, out: LiveResult) -> None:
    work = tempfile.mkdtemp(prefix="e2e-")
    archive = os.path.join(work, "archive")
    os.makedirs(archive)
    t0 = time.perf_counter()
    frames, boxes = write_clip(os.path.join(archive, "clip.mp4"), plan.clip_seconds, plan.clip_fps, plan.clip_size)
    out["clip"] = {"seconds": plan.clip_seconds, "fps": plan.clip_fps, "frames": frames, "size": list(plan.clip_size)}
    out["clip_write_s"] = time.perf_counter() - t0
    cmd = [sys.executable, "-m", "flows.cli", "run", archive, "--store", os.path.join(work, "store"),
           "--device", plan.device, *_random_checkpoints(plan, work, out)]
    if plan.device == "cuda":
        # Random SAM 2 weights make its automatic masks noise: seed the clip's boxes on frame 0 as well, so
        # that propagation (and then describe) has objects to work on whatever the generator finds.
        seeds = os.path.join(work, "seeds.json")
        with open(seeds, "w") as f:
            json.dump([{"video": "clip.mp4", "frame": 0, "box": b} for b in boxes], f)
        cmd += ["--seeds", seeds]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
           "PREFECT_HOME": os.path.join(work, "prefect-home"), "PYTHONUNBUFFERED": "1"}
    out["command"] = " ".join(["pixelrefer", *cmd[3:]])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    text = proc.stdout + proc.stderr
    out.update(returncode=proc.returncode, wall_s=time.perf_counter() - t0, output_tail=text[-3000:])
    m = re.search(r"time: (.*)", proc.stdout)
    if m:
        out["stage_seconds"] = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+) s", m.group(1))}
    for key, pattern in (("objects_tracked", r"objects: (\d+) tracked"), ("descriptions", r"descriptions: (\d+) written"),
                         ("videos_failed", r"(\d+) failed")):
        found = re.search(pattern, proc.stdout)
        if found:
            out[key] = int(found.group(1))
    if proc.returncode != 0:
        raise RuntimeError(f"pixelrefer run exited {proc.returncode}: {text[-800:]}")
    if out.get("videos_failed"):
        raise RuntimeError(f"pixelrefer run: the clip failed: {text[-800:]}")


def _figures(name: str, r: dict[str, Any]) -> str:
    """One line of a section's headline figures (partial results give what they have)."""
    def get(*keys: str) -> Any:
        v: Any = r
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v

    def num(v: Any, fmt: str = ".2f") -> str:
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    if name.startswith("describe:"):
        vp = r.get("vision_pass") or {}
        best = max((v.get("tflop_per_s", 0.0) for v in vp.values() if isinstance(v, dict) and "fell_back" not in v),
                   default=None)
        return (f"fast {num(get('fast_chosen', 'objects_per_s'))} obj/s (slots {get('fast_chosen', 'decode_slots')}), "
                f"batch 1 {num(get('fast_batch1', 'objects_per_s'))}, standard b8 "
                f"{num(get('standard_batch8', 'objects_per_s'))}, encoder best {num(best, '.1f')} TFLOP/s")
    if name == "sam2":
        return ", ".join(f"{n} obj {num(get('by_objects', n, 'ours', 'frames_per_s'), '.1f')} vs "
                         f"{num(get('by_objects', n, 'sam2_predictor', 'frames_per_s'), '.1f')} f/s"
                         for n in r.get("by_objects") or {})
    if name == "e2e":
        return f"stages {r.get('stage_seconds')}, {r.get('objects_tracked')} objects, {r.get('descriptions')} descriptions"
    if name == "env":
        return f"{r.get('gpu', 'cpu')} torch {r.get('torch')} transformers {r.get('transformers')}"
    return ""


def _summary(results: dict[str, Any]) -> list[str]:
    lines = [f"{'section':<18} {'status':<8} {'seconds':>8}  figures"]
    for name, sec in results["sections"].items():
        figs = _figures(name, sec.get("result") or {})
        if sec.get("error"):
            figs += f"  [{sec['error'][:160]}]"
        lines.append(f"{name:<18} {sec['status']:<8} {sec.get('seconds', 0):>8.1f}  {figs}")
    return lines


# ---- what the device machine lacks ------------------------------------------------------------------------------
# The nvidia-h200 image's Python packages (device KINDS.md, as read on 2026-11-17; torch 2.11, transformers
# 5.17 there). `--requirements PART` prints the pins (this venv's versions) of what a part needs beyond
# them, for `pip download` into the carried `.whl` folder (docs/models.md says how).
DEVICE_IMAGE_PACKAGES = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx humanize
huggingface-hub hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib
jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite
lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec
patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11
py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools
shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server
tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq
torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())
# Carried even though the image has a version: ours differs and our code needs it.
CARRY_ANYWAY = frozenset({"transformers"})
# Never carried: torch (the image's CUDA build is the point) and the project itself (it is the working tree).
NEVER_CARRY = frozenset({"torch", "torchvision", "pixelrefer-archive"})
PART_ROOTS = {"compute": ("transformers", "sam2", "decord", "pycocotools"),
              "e2e": ("pixelrefer-archive", "av"), "all": ("pixelrefer-archive", "av")}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def device_requirements(part: str) -> list[str]:
    """`name==version` (this environment's versions) of every package `part` needs that the device image
    lacks, with their dependencies (no extras), sorted."""
    import importlib.metadata as md

    seen: dict[str, str | None] = {}
    todo = list(PART_ROOTS[part])
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            seen[name] = None
            continue
        seen[name] = dist.version
        for req in dist.requires or []:
            if "extra ==" not in req:
                found = re.match(r"[A-Za-z0-9_.\-]+", req)
                if found:
                    todo.append(found.group(0))
    return sorted(f"{n}=={v}" for n, v in seen.items() if v is not None and n not in NEVER_CARRY
                  and (n not in DEVICE_IMAGE_PACKAGES or n in CARRY_ANYWAY))


# ---- the run ---------------------------------------------------------------------------------------------------
SECTIONS: dict[str, Callable[..., None]] = {"env": section_env, "sam2": section_sam2, "e2e": section_e2e}


def run_section(plan: Plan, name: str, out: LiveResult) -> None:
    """Run section `name` ("env", "describe:SIZE", "sam2", "e2e"), filling `out`."""
    if name.startswith("describe:"):
        section_describe(plan, name.split(":", 1)[1], out)
    elif name in SECTIONS:
        SECTIONS[name](plan, out)
    else:
        raise ValueError(f"unknown section {name!r}: use env, describe:SIZE, sam2 or e2e")


def _child(plan: Plan, name: str, path: str) -> int:
    """The section process: its result (or its error) saved to `path` as it goes."""
    out = LiveResult(path)
    out.save()
    try:
        run_section(plan, name, out)
    except Exception as err:  # noqa: BLE001 - the parent reads the error from the file
        out["error"] = f"{type(err).__name__}: {err}"
        out["traceback"] = traceback.format_exc()[-4000:]
        return 1
    return 0


def _section_timeout(name: str, sections: list[str], remaining: float, budget: float) -> float:
    """This section's limit: its share plus the time earlier sections left, keeping the later ones' shares."""
    scale = budget / sum(SECTION_SHARE_S.get(s, 60.0) for s in sections)
    later = sections[sections.index(name) + 1 :]
    share = scale * SECTION_SHARE_S.get(name, 60.0)
    return max(1.0, min(remaining, max(share, remaining - scale * sum(SECTION_SHARE_S.get(s, 60.0) for s in later))))


def run_in_subprocess(plan_flag: list[str], name: str, timeout: float, log: Any) -> dict[str, Any]:
    """One section in its own process: {"status": ok | error | timeout, "result": {...}, ...}."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "section.json")
        cmd = [sys.executable, os.path.abspath(__file__), *plan_flag, "--child", name, "--child-out", path]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
        log.write(f"\n===== {name} (limit {timeout:.0f} s) =====\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
            status = "ok" if rc == 0 else "error"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the section and anything it started (the e2e run's Prefect server)
            proc.wait()
            rc, status = None, "timeout"
        result: dict[str, Any] = {}
        if os.path.exists(path):
            with open(path) as f:
                result = json.load(f)
    sec: dict[str, Any] = {"status": status, "returncode": rc, "result": result}
    if "error" in result:
        sec["error"] = result.pop("error")
        sec["traceback"] = result.pop("traceback", "")
    elif status == "error":
        sec["error"] = f"the section process exited {rc} (crashed: see the log)"
    elif status == "timeout":
        sec["error"] = f"stopped at its {timeout:.0f} s limit; the result holds what it had measured"
    return sec


def run_in_process(plan: Plan, name: str) -> dict[str, Any]:
    out = LiveResult(None)
    try:
        run_section(plan, name, out)
        return {"status": "ok", "result": dict(out)}
    except Exception as err:  # noqa: BLE001 - a failed section is a result; the others still run
        return {"status": "error", "result": dict(out), "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc()[-4000:]}
    finally:
        _free(plan.device)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--part", choices=["compute", "e2e", "all"], default="all")
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(HERE, "results"))
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (checks the script end to end)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="seconds for the whole call (default 540 on the GPU, 900 for the dry run)")
    ap.add_argument("--sections", help="comma list overriding the part's sections (env, describe:SIZE, sam2, e2e)")
    ap.add_argument("--in-process", action="store_true", help="run the sections in this process (no limits)")
    ap.add_argument("--requirements", action="store_true",
                    help="print the pins of what --part needs beyond the device image's packages, and exit")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.requirements:
        print("\n".join(device_requirements(args.part)))
        return 0
    plan = DRY if args.dry_run else GPU
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run on a CPU machine", file=sys.stderr)
        return 2
    if args.child:
        if args.dry_run:  # small ops on a shared CPU: more threads contend more than they help
            torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        return _child(plan, args.child, args.child_out)

    sections = ["env"]
    if args.part in ("compute", "all"):
        sections += [f"describe:{s}" for s in plan.sizes] + ["sam2"]
    if args.part in ("e2e", "all"):
        sections += ["e2e"]
    if args.sections:
        sections = args.sections.split(",")
    budget = args.budget_s if args.budget_s is not None else (900.0 if args.dry_run else 540.0)
    os.makedirs(args.out, exist_ok=True)
    stem = f"gpu_check_{args.part}{'_cpu_dry_run' if args.dry_run else ''}"
    path = os.path.join(args.out, stem + ".json")
    results: dict[str, Any] = {
        "label": ("CPU DRY RUN at tiny sizes: checks that the script runs end to end; these are NOT GPU figures"
                  if args.dry_run else "GPU check (random weights at the released sizes)"),
        "dry_run": args.dry_run, "part": args.part, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "budget_s": budget, "plan": asdict(plan), "sections": {},
    }
    start = time.perf_counter()
    with open(os.path.join(args.out, stem + ".log"), "w") as log:
        for name in sections:
            remaining = budget - (time.perf_counter() - start)
            if remaining < 5.0:
                results["sections"][name] = {"status": "skipped", "reason": f"past the {budget:.0f} s budget"}
                _write_json(path, results)
                continue
            print(f"[{time.perf_counter() - start:6.1f} s] {name} ...", flush=True)
            t0 = time.perf_counter()
            if args.in_process:
                sec = run_in_process(plan, name)
            else:
                limit = _section_timeout(name, sections, remaining, budget)
                sec = run_in_subprocess(["--dry-run"] if args.dry_run else [], name, limit, log)
                sec["limit_s"] = limit
            sec["seconds"] = time.perf_counter() - t0
            results["sections"][name] = sec
            results["total_s"] = time.perf_counter() - start
            _write_json(path, results)
    print("\n".join(_summary(results)))
    print(f"results: {path}")
    return 0 if all(s["status"] == "ok" for s in results["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
