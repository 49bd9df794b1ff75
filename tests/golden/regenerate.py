"""Regenerate the golden outputs of the tiny models (tests/golden/*.npz). Run ONLY on purpose.

Why these files exist: the other model tests compare our code against references computed by the same
code, so a numeric change in the vision RoPE, OCI, k-means or the region encoder would pass them all.
The golden files pin the tiny model's outputs (vision features, object tokens, first-step logits and
greedy token ids) on fixed inputs, as computed when the file was written; `test_golden.py` compares
against them (fp32, tight tolerance, ids exact).

Regenerate only when an output change is intended (a parity fix, a new tiny profile), say why, and
review the diff of the numbers:

    .venv/bin/python tests/golden/regenerate.py --why "fix: ..." --overwrite

Without --overwrite an existing file is left alone and the script exits with status 1.
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
    args = ap.parse_args()
    if LITE_FILE.exists() and not args.overwrite:
        print(f"{LITE_FILE} exists; pass --overwrite (and a --why) to replace it", file=sys.stderr)
        return 1

    import torch
    import transformers

    from pixelrefer_core.model.tiny import build_tiny_model

    torch.set_num_threads(1)  # the most reproducible summation order
    model, tokenizer = build_tiny_model(seed=0)
    inputs = make_inputs()
    outputs = lite_outputs(model, tokenizer, inputs)
    meta = {
        "why": args.why,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "model": "pixelrefer_core.model.tiny.build_tiny_model(seed=0), fp32, CPU",
    }
    np.savez_compressed(LITE_FILE, meta=np.asarray(json.dumps(meta)), **inputs, **outputs)
    print(f"wrote {LITE_FILE} ({LITE_FILE.stat().st_size} bytes): {sorted(outputs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
