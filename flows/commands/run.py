"""`pixelrefer run ARCHIVE --store DIR ...`: process every video of an archive into a store.

Re-running skips what is done; killing a run and starting it again resumes. Exit codes: 0 the run
worked (some videos may have failed: see the summary), 2 the run could not start (bad arguments,
unusable store, missing model, invalid prompt file), 1 the run itself failed.
"""

from __future__ import annotations

import argparse

from flows.commands._common import (
    add_model_options,
    add_store_options,
    check_inputs,
    fail,
    prepare_prefect,
    settings_from_args,
    setup_console,
    usage_errors,
)
from flows.commands._pipeline import run_pipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="track and describe every video of an archive", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archive", help="folder (searched recursively) or fsspec URL of the videos")
    add_store_options(p)
    add_model_options(p)
    add_tracking_options(p)
    p.set_defaults(func=run)


def add_tracking_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sam2", help="SAM 2 checkpoint: HF id (facebook/sam2.1-hiera-large) or local file")
    p.add_argument("--segmenter", choices=["sam2", "motion"],
                   help="default: sam2 when --sam2 is given, motion under --profile tiny")
    p.add_argument("--sample-fps", type=float, help="frames per second given to the tracker (default 2)")
    p.add_argument("--seeds", help="YAML/JSON file of boxes/points that start tracks at given times "
                                   "(e.g. video: gate.mp4, at: '00:12', box: [x0, y0, x1, y1])")


def tracking_values(args: argparse.Namespace) -> dict[str, object]:
    return dict(archive=args.archive, sam2=args.sam2, segmenter=args.segmenter, sample_fps=args.sample_fps,
                seeds_file=getattr(args, "seeds", None))


def run(args: argparse.Namespace) -> int:
    prepare_prefect(args.verbose)
    setup_console(args.verbose)
    try:
        settings = settings_from_args(args, **tracking_values(args))
        check_inputs(settings)
        from flows.stages.discover import check_archive

        check_archive(settings.archive or "")
    except usage_errors() as exc:
        return fail("run", exc)
    return run_pipeline("run", settings, "archive")
