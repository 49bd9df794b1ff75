"""SAM 2 propagation: ours against the sam2 package's own predictor, as `gpu_check.py` measures it.

Frames/s for 1 / 8 / 32 objects, ours (`SAM2Segmenter.propagate_scored`: every object of a chunk in one
batched call, frames resized on the device, bf16 autocast on CUDA) against the sam2 package's `init_state` +
`add_new_mask` + `propagate_in_video` on the same frames, objects and weights (random weights at the real
size: `--model large`), and peak GPU memory at 1x and 10x the clip length (ours: chunks of `--chunk`
frames, re-seeded per chunk as the tracker does; theirs: the whole clip in one inference state).

    python benchmarks/sam2_propagation.py --model large --device cuda

(`bench_tracking.py vs-sam2` is the same comparison through a decoded mp4 file, each run in its own process.)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any

import numpy as np

SAM2_CONFIGS = {"large": "configs/sam2.1/sam2.1_hiera_l.yaml", "tiny": "configs/sam2.1/sam2.1_hiera_t.yaml"}


def moving_objects(n_objects: int, n_frames: int, h: int, w: int, seed: int = 0) -> tuple[list[np.ndarray], Any]:
    """Frames (noise background, coloured boxes moving) and `mask_of(frame, k)`: object k's mask there
    (computed on demand: 32 objects x 320 frames of masks would be gigabytes)."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(40, 200, (h, w, 3), dtype=np.uint8)
    sizes = rng.integers(max(8, h // 20), max(9, h // 5), n_objects)
    pos = np.stack([rng.uniform(0, h - sizes), rng.uniform(0, w - sizes)], 1)
    vel = rng.uniform(-0.01, 0.01, (n_objects, 2)) * np.array([h, w])
    colors = rng.integers(0, 256, (n_objects, 3), dtype=np.uint8)

    def box(f: int, k: int) -> tuple[int, int, int]:
        y, x = (pos[k] + vel[k] * f).astype(int)
        return int(np.clip(y, 0, h - sizes[k])), int(np.clip(x, 0, w - sizes[k])), int(sizes[k])

    def mask_of(f: int, k: int) -> np.ndarray:
        y, x, s = box(f, k)
        m = np.zeros((h, w), dtype=bool)
        m[y : y + s, x : x + s] = True
        return m

    frames = []
    for f in range(n_frames):
        img = bg.copy()
        for k in range(n_objects):
            y, x, s = box(f, k)
            img[y : y + s, x : x + s] = colors[k]
        frames.append(img)
    return frames, mask_of


def _peak_reset(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: Any) -> float | None:
    import torch

    if torch.device(device).type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**30


def ours(seg: Any, frames: list[np.ndarray], mask_of: Any, n_objects: int, chunk: int) -> dict[str, Any]:
    """Our propagation over `frames` in chunks of `chunk` (each chunk seeded with the objects' masks on its
    first frame, as the tracker re-seeds from its last masks): frames/s and peak device memory."""
    _peak_reset(seg.device)
    t0 = time.perf_counter()
    kept = 0
    for start in range(0, len(frames) - 1, chunk - 1):
        part = frames[start : start + chunk]
        if len(part) < 2:
            break
        seeds = {k + 1: mask_of(start, k) for k in range(n_objects)}
        out = seg.propagate_scored(part, seeds)
        kept += sum(len(d) for d in out[1:])
    seconds = time.perf_counter() - t0
    return {"frames": len(frames), "seconds": seconds, "frames_per_s": len(frames) / seconds,
            "peak_gpu_gib": _peak_gib(seg.device), "masks_kept": kept}


def theirs(predictor: Any, jpeg_dir: str, mask_of: Any, n_objects: int, device: Any) -> dict[str, Any]:
    """The sam2 package's own video API on the same frames (from a JPEG folder, as its README does):
    init_state, one add_new_mask per object on frame 0, propagate_in_video (timed), under bf16 autocast
    on CUDA."""
    import contextlib

    import torch

    _peak_reset(device)
    cast = torch.autocast("cuda", dtype=torch.bfloat16) if torch.device(device).type == "cuda" else contextlib.nullcontext()
    with torch.inference_mode(), cast:
        t0 = time.perf_counter()
        state = predictor.init_state(video_path=jpeg_dir)
        init_s = time.perf_counter() - t0
        for k in range(n_objects):
            predictor.add_new_mask(state, frame_idx=0, obj_id=k + 1, mask=torch.from_numpy(mask_of(0, k)))
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        n = 0
        for _ in predictor.propagate_in_video(state):
            n += 1
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
    return {"frames": n, "seconds": seconds, "frames_per_s": n / seconds, "init_state_s": init_s,
            "peak_gpu_gib": _peak_gib(device)}


def _write_jpegs(frames: list[np.ndarray], folder: str) -> str:
    import cv2

    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(os.path.join(folder, f"{i:05d}.jpg"), f[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def sam2_propagation_bench(model: str = "large", device: str = "cuda", objects: tuple[int, ...] = (1, 8, 32),
                           frames: int = 32, long_factor: int = 10, long_objects: int = 8, chunk: int = 16,
                           height: int = 720, width: int = 1280, workdir: str | None = None,
                           compile: bool = False, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """The comparison above, as a dict (see the module docstring). `model`: 'large' (random weights at the
    released size, saved as a checkpoint our loader reads) or 'tiny' (our 256 px test profile); `compile`:
    our segmenter compiles its image encoder (minutes of autotuning on a GPU). `out`: filled in place as
    each figure is measured (top-level keys are set, never mutated, so a dict that saves itself on
    assignment keeps what a run stopped at its time limit had measured); also returned."""
    out = {} if out is None else out
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    from pixelrefer_core.tracking.sam2_segmenter import TINY_OVERRIDES, SAM2Segmenter, _has_cuda_ext

    os.environ.setdefault("TQDM_DISABLE", "1")  # propagate_in_video's progress bar
    work = workdir or tempfile.mkdtemp(prefix="sam2-bench-")
    overrides = list(TINY_OVERRIDES) if model == "tiny" else []
    t0 = time.perf_counter()
    if model == "tiny":
        seg = SAM2Segmenter(device=device, profile="tiny", whole_frame_frac=1.0)
    else:
        torch.manual_seed(0)
        rand = build_sam2_video_predictor(SAM2_CONFIGS[model], ckpt_path=None, device="cpu", apply_postprocessing=False)
        ckpt = os.path.join(work, f"sam2.1_hiera_{model}.pt")
        torch.save({"model": rand.state_dict()}, ckpt)
        del rand
        seg = SAM2Segmenter(checkpoint=ckpt, device=device, whole_frame_frac=1.0, compile=compile)
    predictor = build_sam2_video_predictor(SAM2_CONFIGS[model], ckpt_path=None, device=device,
                                           hydra_overrides_extra=overrides, apply_postprocessing=_has_cuda_ext())
    predictor.load_state_dict(seg.predictor.state_dict())
    out.update({"model": f"sam2.1-hiera-{model}", "image_size": seg.image_size, "device": device,
                "frame_size": [height, width], "chunk": chunk, "compiled": compile,
                "params_m": sum(p.numel() for p in seg.predictor.parameters()) / 1e6})
    out["setup_s"] = time.perf_counter() - t0
    n_max = max(max(objects), long_objects)
    clip, mask_of = moving_objects(n_max, frames * long_factor, height, width)
    jpegs = _write_jpegs(clip[:frames], os.path.join(work, "x1"))
    ours(seg, clip[: min(frames, chunk)], mask_of, 1, chunk)  # warm-up
    for n in objects:
        row = {"ours": ours(seg, clip[:frames], mask_of, n, chunk), "sam2_predictor": theirs(predictor, jpegs, mask_of, n, device)}
        row["speedup"] = row["ours"]["frames_per_s"] / row["sam2_predictor"]["frames_per_s"]
        out["by_objects"] = {**out.get("by_objects", {}), str(n): row}
    long_jpegs = _write_jpegs(clip, os.path.join(work, f"x{long_factor}"))
    memory: dict[str, Any] = {
        "objects": long_objects,
        "note": "sam2_predictor rows track 1 object (its memory grows with the clip, not the objects)",
    }
    for key, run in (
        ("ours_1x", lambda: ours(seg, clip[:frames], mask_of, long_objects, chunk)),
        (f"ours_{long_factor}x", lambda: ours(seg, clip, mask_of, long_objects, chunk)),
        ("sam2_predictor_1x", lambda: theirs(predictor, jpegs, mask_of, 1, device)),
        (f"sam2_predictor_{long_factor}x", lambda: theirs(predictor, long_jpegs, mask_of, 1, device)),
    ):
        memory[key] = run()
        out["memory"] = dict(memory)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--model", choices=sorted(SAM2_CONFIGS), default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--objects", default="1,8,32")
    args = ap.parse_args()
    size = (720, 1280) if args.model == "large" else (240, 320)
    r = sam2_propagation_bench(args.model, args.device, tuple(int(n) for n in args.objects.split(",")),
                               frames=args.frames, long_factor=10, height=size[0], width=size[1])
    for n, row in r["by_objects"].items():
        print(f"{n:>3} objects: ours {row['ours']['frames_per_s']:7.2f} frames/s, sam2 predictor "
              f"{row['sam2_predictor']['frames_per_s']:7.2f} frames/s ({row['speedup']:.2f}x)")
    print(json.dumps(r["memory"], indent=1))


if __name__ == "__main__":
    main()
