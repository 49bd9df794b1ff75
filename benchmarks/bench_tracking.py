"""Tracking throughput and memory. Every measurement runs in a fresh subprocess (clean peak memory).

Modes:

  pipeline  (default) `track_file` on a generated video and on one 10x longer: frames/s, the tracemalloc
            peak of Python/numpy allocations (frames, masks, records) and the process's peak RSS.
              .venv/bin/python benchmarks/bench_tracking.py [pipeline] [--sam2] [--frames 60]

  sam3      SAM 3 keyframe concept detection (seconds per keyframe, keyframes batched) and propagation
            frames/s with N objects, peak memory at 1x and 10x video length (GPU: max allocated;
            CPU: peak RSS). Tiny random model on CPU; the real size (random weights, 1,008 px) on a GPU:
              .venv/bin/python benchmarks/bench_tracking.py sam3 --objects 1,4,16 --frames 8
              .venv/bin/python benchmarks/bench_tracking.py sam3 --device cuda --size real --objects 1,16,64

  vs-sam2   Our SAM 2 path (chunked, re-seeded, objects batched, frames prefetched) against the sam2
            package's own video predictor (`init_state` on the mp4 + `add_new_mask` + `propagate_in_video`)
            on the same clip, objects and weights: propagation frames/s and end-to-end frames/s (decode
            included), peak memory at 1x and 10x length.
              .venv/bin/python benchmarks/bench_tracking.py vs-sam2 --objects 1,8 --frames 16
              .venv/bin/python benchmarks/bench_tracking.py vs-sam2 --device cuda --size large --objects 1,8,32

`--json PATH` also writes every result as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

# -- generated media ------------------------------------------------------------------------------


def _scene(num_frames: int):
    from pixelrefer_core.synthetic import SyntheticObject, render_scene

    # objects cross the frame again and again for as long as the video lasts
    objs = []
    period = 60
    for k in range(0, num_frames, period):
        objs += [
            SyntheticObject("red", "rect", 30, (300, 60), (-5, 0), enter_frame=k, exit_frame=k + period),
            SyntheticObject("blue", "circle", 28, (20, 170), (5, 0), enter_frame=k, exit_frame=k + period),
        ]
    return render_scene(objs, num_frames, seed=0)[0]


def _grid_scene(num_objects: int, num_frames: int, width: int, height: int):
    """`num_objects` squares on a grid, each drifting slowly: (frames, masks of every object on frame 0)."""
    from pixelrefer_core.synthetic import COLORS, SyntheticObject, render_scene

    cols = max(1, int(round((num_objects * width / height) ** 0.5)))
    rows = -(-num_objects // cols)
    size = max(6, int(min(width / cols, height / rows) * 0.5))
    names = sorted(COLORS)
    objs = [
        SyntheticObject(names[i % len(names)], "rect", size,
                        ((i % cols + 0.5) * width / cols, (i // cols + 0.5) * height / rows), ((-1) ** i * 0.5, 0.3))
        for i in range(num_objects)
    ]
    frames, truth = render_scene(objs, num_frames, width=width, height=height, seed=1)
    return frames, [truth[0][i] for i in range(num_objects)]


# -- measurements (children) ----------------------------------------------------------------------


def _peak_memory(device: str) -> dict[str, float]:
    import ctypes
    import gc
    import resource

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # the peak counts glibc's fragmented heap; "end" what is still held
    with open("/proc/self/statm") as fh:  # Linux: resident pages now
        now = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_end_mib": now}
    if device.startswith("cuda"):
        import torch

        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def child_pipeline(spec: dict[str, Any]) -> dict[str, Any]:
    import tracemalloc

    from pixelrefer_core.tracking import TrackerConfig, build_segmenter, track_file
    from pixelrefer_core.video import probe, sample_indices

    seg = build_segmenter(spec["kind"], profile="tiny" if spec["kind"] == "sam2" else None)
    tracemalloc.start()
    cfg = TrackerConfig(sample_fps=5.0, keyframe_every=5, chunk_size=8)
    t0 = time.perf_counter()
    tracks = track_file(spec["path"], seg, cfg)
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    n = len(sample_indices(probe(spec["path"]), cfg.sample_fps))
    return {"sampled": n, "seconds": dt, "fps": n / dt, "peak_traced_mib": peak / 2**20, "tracks": len(tracks),
            **_peak_memory("cpu")}


def _sam3_segmenter(spec: dict[str, Any]):
    from pixelrefer_core.tracking import build_segmenter

    concepts = [f"thing {i}" for i in range(spec["concepts"])]
    # random weights score every query alike: threshold 0 and a cap give a realistic number of detections
    options = dict(concepts=concepts, default_threshold=0.0, whole_frame_frac=1.0, detect_batch=spec["keyframes"],
                   max_detections=16)
    if spec["size"] == "tiny":
        return build_segmenter("sam3", profile="tiny", device=spec["device"], **options)
    from pixelrefer_core.tracking.sam3_segmenter import SAM3Segmenter
    from pixelrefer_core.tracking.sam3_tiny import random_parts, real_size_config

    return SAM3Segmenter(device=spec["device"], parts=random_parts(real_size_config(), spec["device"]), **options)


def _chunked_propagation(seg, frames, seeds, chunk: int, device: str) -> float:
    """Propagate `seeds` over `frames` in chunks as the tracker does (each chunk re-seeded with the last
    masks, an object the model lost re-seeded with its first mask, so N stays N). Returns seconds."""
    t0 = time.perf_counter()
    current = dict(enumerate(seeds))
    start = 0
    while start < len(frames) - 1:
        part = frames[start : start + chunk]
        out = seg.propagate_scored(part, current)
        current = {k: out[-1][k][0] if k in out[-1] else seeds[k] for k in current}
        start += len(part) - 1
    _sync(device)
    return time.perf_counter() - t0


def _streamed_propagation(seg, path: str, seeds, chunk: int, device: str) -> tuple[int, float, float]:
    """Decode `path` on a prefetch thread (frames sent to the device ahead) and propagate chunk by chunk
    as the tracker does, holding one chunk: (frames, seconds in propagate, seconds end to end)."""
    from pixelrefer_core.tracking import TrackerConfig, prefetched_frames

    t0 = time.perf_counter()
    prop_s, n = 0.0, 0
    cpu0 = time.thread_time()
    current = dict(enumerate(seeds))
    buf: list = []
    for _, _, rgb in prefetched_frames(path, TrackerConfig(sample_fps=None, chunk_size=chunk), seg):
        n += 1
        buf.append(rgb)
        if len(buf) == chunk:
            t1 = time.perf_counter()
            out = seg.propagate_scored(buf, current)
            _sync(device)
            prop_s += time.perf_counter() - t1
            current = {k: out[-1][k][0] if k in out[-1] else seeds[k] for k in current}
            buf = buf[-1:]
    if len(buf) > 1:
        t1 = time.perf_counter()
        seg.propagate_scored(buf, current)
        _sync(device)
        prop_s += time.perf_counter() - t1
    global _LAST_CPU_S
    _LAST_CPU_S = time.thread_time() - cpu0  # this thread only: the prefetch thread's decoding is not in it
    return n, prop_s, time.perf_counter() - t0


_LAST_CPU_S = 0.0


def child_sam3(spec: dict[str, Any]) -> dict[str, Any]:
    from pixelrefer_core.video import read_frames

    device = spec["device"]
    t0 = time.perf_counter()
    seg = _sam3_segmenter(spec)
    build_s = time.perf_counter() - t0
    _, seeds = _grid_scene(spec["objects"], 1, spec["width"], spec["height"])
    k = spec["keyframes"]
    keyframes, _ = read_frames(spec["path"], list(range(k)))
    seg.discover_labelled_batch(keyframes)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    found = seg.discover_labelled_batch(keyframes)
    _sync(device)
    detect_s = (time.perf_counter() - t0) / k
    _chunked_propagation(seg, keyframes[:3], seeds, spec["chunk"], device)  # warm-up
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()
    n, prop_s, total_s = _streamed_propagation(seg, spec["path"], seeds, spec["chunk"], device)
    return {"build_s": build_s, "detect_s_per_keyframe": detect_s, "detections_per_keyframe": len(found[0]),
            "propagated_frames": n - 1, "propagation_fps": (n - 1) / prop_s, "end_to_end_fps": n / total_s,
            **_peak_memory(device)}


def _sam2_segmenter(spec: dict[str, Any]):
    from pixelrefer_core.tracking import build_segmenter

    if spec["size"] == "tiny":
        return build_segmenter("sam2", profile="tiny", device=spec["device"], whole_frame_frac=1.0)
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    from pixelrefer_core.tracking.sam2_segmenter import SAM2Segmenter

    # a real-size random model: the segmenter's loader wants a checkpoint, so give it one
    ckpt = os.path.join(spec["tmp"], "sam2.1_hiera_large.pt")
    if not os.path.exists(ckpt):
        torch.manual_seed(0)
        model = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_l.yaml", ckpt_path=None, device="cpu")
        torch.save({"model": model.state_dict()}, ckpt)
        del model
    return SAM2Segmenter(checkpoint=ckpt, device=spec["device"], whole_frame_frac=1.0, compile=spec.get("compile", False))


def child_vs_sam2(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    from pixelrefer_core.tracking.sam2_segmenter import _no_progress_bar

    device = spec["device"]
    seg = _sam2_segmenter(spec)
    frames, seeds = _grid_scene(spec["objects"], 3, spec["width"], spec["height"])
    path = spec["path"]
    _chunked_propagation(seg, frames, seeds, spec["chunk"], device)  # warm-up (and compile, if asked)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    if spec["who"] == "ours":
        n, prop_s, total_s = _streamed_propagation(seg, path, seeds, spec["chunk"], device)
        cpu_s = _LAST_CPU_S
    else:
        pred = seg.predictor
        with torch.inference_mode(), seg._autocast():
            t0, c0 = time.perf_counter(), time.thread_time()
            state = pred.init_state(video_path=path)
            init_s, init_cpu_s = time.perf_counter() - t0, time.thread_time() - c0
            t1 = time.perf_counter()
            c1 = time.thread_time()
            for i, m in enumerate(seeds):
                pred.add_new_mask(state, 0, i, torch.from_numpy(m))
            with _no_progress_bar():
                for _, _, logits in pred.propagate_in_video(state, start_frame_idx=0):
                    (logits > 0).cpu()  # what a caller needs: binary masks on the host
            _sync(device)
            prop_s = time.perf_counter() - t1
            cpu_s = time.thread_time() - c1 + init_cpu_s
        total_s = init_s + prop_s
        n = int(state["num_frames"])
    return {"frames": n, "propagation_fps": (n - 1) / prop_s, "end_to_end_fps": n / total_s,
            "main_thread_cpu_ms_per_frame": 1000 * cpu_s / n, **_peak_memory(device)}


_THREADS = 0
CHILDREN = {"pipeline": child_pipeline, "sam3": child_sam3, "vs-sam2": child_vs_sam2}


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    spec = {**spec, "threads": _THREADS}
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"child {spec} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return {**spec, **result}


# -- modes ----------------------------------------------------------------------------------------


def mode_pipeline(args: argparse.Namespace, tmp: str) -> list[dict[str, Any]]:
    from pixelrefer_core.synthetic import write_video

    results = []
    for mult in (1, 10):
        path = os.path.join(tmp, f"x{mult}.mp4")
        write_video(path, _scene(args.frames * mult), fps=10.0)
        for kind in ["motion"] + (["sam2"] if args.sam2 else []):
            r = _run_child({"mode": "pipeline", "kind": kind, "path": path, "mult": mult})
            results.append(r)
            print(f"{kind:7s} {mult:3d}x  {r['sampled']:5d} sampled frames  {r['fps']:7.1f} frames/s  peak traced "
                  f"{r['peak_traced_mib']:6.1f} MiB  peak RSS {r['peak_rss_mib']:7.1f} MiB  tracks {r['tracks']}")
    return results


def _size_defaults(args: argparse.Namespace) -> tuple[int, int]:
    if args.width and args.height:
        return args.width, args.height
    return (320, 240) if args.size == "tiny" else (1280, 720)


def mode_sam3(args: argparse.Namespace, tmp: str) -> list[dict[str, Any]]:
    from pixelrefer_core.synthetic import write_video

    width, height = _size_defaults(args)
    results = []
    for n in args.objects:
        for mult in args.mult:
            frames, _ = _grid_scene(n, max(args.frames * mult, args.keyframes), width, height)
            path = os.path.join(tmp, f"grid_{n}_{mult}.mp4")
            write_video(path, frames, fps=10.0)
            del frames
            spec = {"mode": "sam3", "device": args.device, "size": args.size, "objects": n, "mult": mult,
                    "path": path, "chunk": args.chunk, "keyframes": args.keyframes,
                    "concepts": args.concepts, "width": width, "height": height}
            r = _run_child(spec)
            results.append(r)
            gpu = f"  peak GPU {r['peak_gpu_mib']:8.1f} MiB" if "peak_gpu_mib" in r else ""
            print(f"sam3 {args.size:5s} {args.device:5s} {n:3d} obj {mult:3d}x ({r['propagated_frames'] + 1:4d} frames)  "
                  f"detect {r['detect_s_per_keyframe'] * 1000:8.1f} ms/keyframe ({args.concepts} concepts, "
                  f"{args.keyframes} per call)  propagate {r['propagation_fps']:7.2f} frames/s  "
                  f"end to end {r['end_to_end_fps']:7.2f} frames/s  "
                  f"RSS peak {r['peak_rss_mib']:7.1f} / end {r['rss_end_mib']:7.1f} MiB{gpu}")
    return results


def mode_vs_sam2(args: argparse.Namespace, tmp: str) -> list[dict[str, Any]]:
    from pixelrefer_core.synthetic import write_video

    width, height = _size_defaults(args)
    results = []
    for n in args.objects:
        for mult in args.mult:
            frames, _ = _grid_scene(n, args.frames * mult, width, height)
            path = os.path.join(tmp, f"grid_{n}_{mult}.mp4")
            write_video(path, frames, fps=10.0)
            del frames
            for who in ("ours", "sam2"):
                spec = {"mode": "vs-sam2", "who": who, "device": args.device, "size": args.size, "objects": n,
                        "mult": mult, "chunk": args.chunk, "width": width, "height": height, "path": path, "tmp": tmp,
                        "compile": args.compile}
                r = _run_child(spec)
                results.append(r)
                gpu = f"  peak GPU {r['peak_gpu_mib']:8.1f} MiB" if "peak_gpu_mib" in r else ""
                print(f"sam2 {args.size:5s} {args.device:5s} {who:5s} {n:3d} obj {mult:3d}x ({r['frames']:4d} frames)  "
                      f"propagate {r['propagation_fps']:7.2f} frames/s  end to end {r['end_to_end_fps']:7.2f} frames/s  "
                      f"main-thread CPU {r['main_thread_cpu_ms_per_frame']:7.1f} ms/frame  "
                      f"RSS peak {r['peak_rss_mib']:7.1f} / end {r['rss_end_mib']:7.1f} MiB{gpu}")
    return results


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", default="pipeline", choices=sorted(CHILDREN))
    ap.add_argument("--frames", type=int, default=None, help="frames at 1x (pipeline 60, sam3 8, vs-sam2 16)")
    ap.add_argument("--sam2", action="store_true", help="pipeline: also the tiny random SAM 2 (slow on CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="tiny", help="tiny | real (sam3) | large (vs-sam2)")
    ap.add_argument("--objects", type=_ints, default=None, help="comma list of object counts")
    ap.add_argument("--mult", type=_ints, default=[1, 10], help="video lengths, as multiples of --frames")
    ap.add_argument("--chunk", type=int, default=16, help="frames per propagation chunk (the tracker's chunk_size)")
    ap.add_argument("--keyframes", type=int, default=4, help="sam3: keyframes per batched detector call")
    ap.add_argument("--concepts", type=int, default=2, help="sam3: number of concepts")
    ap.add_argument("--width", type=int, default=0)
    ap.add_argument("--height", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="vs-sam2: compile our image encoder (GPU)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads in the measuring processes (0: default)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(args.child)
        if spec.get("threads"):
            import torch

            torch.set_num_threads(int(spec["threads"]))
        print(json.dumps(CHILDREN[spec["mode"]](spec)))
        return
    global _THREADS
    _THREADS = args.threads
    args.frames = args.frames or {"pipeline": 60, "sam3": 8, "vs-sam2": 16}[args.mode]
    args.objects = args.objects or ([1, 16, 64] if args.size == "real" else [1, 8, 32] if args.size == "large" else [1, 4])
    with tempfile.TemporaryDirectory() as tmp:
        run = {"pipeline": mode_pipeline, "sam3": mode_sam3, "vs-sam2": mode_vs_sam2}[args.mode]
        results = run(args, tmp)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"mode": args.mode, "argv": sys.argv[1:], "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
