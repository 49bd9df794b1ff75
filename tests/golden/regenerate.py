"""Regenerate the golden outputs of the tiny models (tests/golden/*.npz). Run ONLY on purpose.

Why these files exist: the other model tests compare our code against references computed by the same
code, so a numeric change in the vision RoPE, OCI, k-means or the region encoder would pass them all.
The golden files pin the tiny model's outputs (vision features, object tokens, first-step logits and
greedy token ids) on fixed inputs, as computed when the file was written; `test_golden.py` compares
against them (fp32, tight tolerance, ids exact).

Regenerate only when an output change is intended (a parity fix, a new tiny profile), say why, and
review the diff of the numbers:

    .venv/bin/python tests/golden/regenerate.py --why "fix: ..." --overwrite [--variant lite|full]

Without --overwrite an existing file is left alone and the script exits with status 1. --variant picks
one file (default: both): pixelrefer_lite_tiny.npz (PixelRefer-Lite) or pixelrefer_tiny.npz (full).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import LITE_FILE, lite_outputs, make_inputs  # noqa: E402
from cases_full import FULL_FILE, full_outputs, make_full_inputs  # noqa: E402

VARIANTS = {
    "lite": (LITE_FILE, make_inputs, lite_outputs),
    "full": (FULL_FILE, make_full_inputs, full_outputs),
}


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--why", required=True, help="why the golden outputs change (stored in the file)")
    ap.add_argument("--overwrite", action="store_true", help="replace existing golden files")
    ap.add_argument("--variant", choices=sorted(VARIANTS), help="only this model's file (default: both)")
    args = ap.parse_args()
    chosen = [args.variant] if args.variant else sorted(VARIANTS)
    existing = [str(VARIANTS[v][0]) for v in chosen if VARIANTS[v][0].exists()]
    if existing and not args.overwrite:
        print(f"{', '.join(existing)} exist(s); pass --overwrite (and a --why) to replace", file=sys.stderr)
        return 1

    import torch
    import transformers

    from pixelrefer_core.model.tiny import build_tiny_model

    torch.set_num_threads(1)  # the most reproducible summation order
    for variant in chosen:
        path, make, compute = VARIANTS[variant]
        model, tokenizer = build_tiny_model(seed=0, model_kind=variant)
        inputs = make()
        outputs = compute(model, tokenizer, inputs)
        meta = {
            "why": args.why,
            "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": _commit(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "model": f"pixelrefer_core.model.tiny.build_tiny_model(seed=0, model_kind={variant!r}), fp32, CPU",
        }
        np.savez_compressed(path, meta=np.asarray(json.dumps(meta)), **inputs, **outputs)
        print(f"wrote {path} ({path.stat().st_size} bytes): {sorted(outputs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
