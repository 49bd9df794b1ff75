"""Tracking throughput and peak memory for a generated video and one 10x longer (same motion, extended).

Each run happens in a fresh subprocess. Two memory figures: the tracemalloc peak of Python/numpy allocations
made while tracking (frames, masks, records; imports and weights excluded) and the process's peak RSS
(everything, torch tensors of SAM 2 included). Usage:

    .venv/bin/python benchmarks/bench_tracking.py [--sam2] [--frames 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


def _scene(num_frames: int):
    from pixelrefer_core.synthetic import SyntheticObject, render_scene

    # objects bounce across the frame for as long as the video lasts (velocities wrap via period)
    objs = []
    period = 60
    for k in range(0, num_frames, period):
        objs += [
            SyntheticObject("red", "rect", 30, (300, 60), (-5, 0), enter_frame=k, exit_frame=k + period),
            SyntheticObject("blue", "circle", 28, (20, 170), (5, 0), enter_frame=k, exit_frame=k + period),
        ]
    return render_scene(objs, num_frames, seed=0)[0]


def _child(path: str, kind: str) -> None:
    import resource
    import time
    import tracemalloc

    from pixelrefer_core.tracking import TrackerConfig, build_segmenter, track_file
    from pixelrefer_core.video import probe, sample_indices

    seg = build_segmenter(kind, profile="tiny" if kind == "sam2" else None)
    tracemalloc.start()
    cfg = TrackerConfig(sample_fps=5.0, keyframe_every=5, chunk_size=8)
    t0 = time.perf_counter()
    tracks = track_file(path, seg, cfg)
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    n = len(sample_indices(probe(path), cfg.sample_fps))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"sampled": n, "seconds": dt, "fps": n / dt, "peak_mib": peak / 2**20, "rss_mib": rss,
                      "tracks": len(tracks)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--sam2", action="store_true", help="also run the tiny random SAM 2 (slow on CPU)")
    ap.add_argument("--child", nargs=2)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    from pixelrefer_core.synthetic import write_video

    kinds = ["motion"] + (["sam2"] if args.sam2 else [])
    with tempfile.TemporaryDirectory() as tmp:
        for mult in (1, 10):
            path = os.path.join(tmp, f"x{mult}.mp4")
            write_video(path, _scene(args.frames * mult), fps=10.0)
            for kind in kinds:
                out = subprocess.run([sys.executable, __file__, "--child", path, kind], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{kind:7s} {mult:3d}x  {r['sampled']:5d} sampled frames  {r['fps']:7.1f} frames/s  "
                      f"peak traced {r['peak_mib']:6.1f} MiB  peak RSS {r['rss_mib']:7.1f} MiB  tracks {r['tracks']}")


if __name__ == "__main__":
    main()
