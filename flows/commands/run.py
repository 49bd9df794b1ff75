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
    p.add_argument("--report", metavar="DIR", help="refresh the static report (pixelrefer report) in DIR when the run ends")
    p.set_defaults(func=run)


def add_tracking_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sam2", help="SAM 2 checkpoint: HF id (facebook/sam2.1-hiera-large) or local file")
    p.add_argument("--segmenter", choices=["sam2", "motion", "sam3"],
                   help="default: sam3 with --concepts, sam2 when --sam2 is given, motion under --profile tiny")
    p.add_argument("--sample-fps", type=float, help="frames per second given to the tracker (default 2)")
    p.add_argument("--seeds", help="YAML/JSON file of boxes/points that start tracks at given times "
                                   "(e.g. video: gate.mp4, at: '00:12', box: [x0, y0, x1, y1])")
    concepts = p.add_mutually_exclusive_group()
    concepts.add_argument("--concepts", help="find and track every instance of these concepts with SAM 3, "
                                             "e.g. 'person, car, dog' (objects get their concept as label)")
    concepts.add_argument("--concepts-file", help="YAML/JSON list of concepts, each a name or {name, threshold}")
    p.add_argument("--discover", choices=["auto", "concepts", "both"],
                   help="auto: salient objects without names; concepts: only the named concepts (default with "
                        "--concepts); both")
    p.add_argument("--propagator", choices=["sam3", "sam2"],
                   help="what carries concept masks between keyframes (default sam3; sam2 needs --sam2)")
    p.add_argument("--sam3", help="SAM 3 checkpoint: HF id (default facebook/sam3) or local folder")
    p.add_argument("--no-describe", dest="describe", action="store_false",
                   help="ingest, track and make thumbnails only; `pixelrefer describe` (e.g. on a GPU machine) "
                        "describes them later")


def tracking_values(args: argparse.Namespace) -> dict[str, object]:
    """Tracking settings from the arguments; raises PromptError for a bad concept list or file."""
    from flows.concepts import load_concepts, parse_concept_list

    concepts = None
    if getattr(args, "concepts", None) is not None:
        concepts = parse_concept_list(args.concepts)
    elif getattr(args, "concepts_file", None):
        concepts = load_concepts(args.concepts_file)
    return dict(archive=args.archive, sam2=args.sam2, segmenter=args.segmenter, sample_fps=args.sample_fps,
                seeds_file=getattr(args, "seeds", None), concepts=concepts, discover=getattr(args, "discover", None),
                propagator=getattr(args, "propagator", None), sam3=getattr(args, "sam3", None),
                describe=getattr(args, "describe", True))


def run(args: argparse.Namespace) -> int:
    import time

    prepare_prefect(args.verbose)
    setup_console(args.verbose)
    try:
        settings = settings_from_args(args, **tracking_values(args), report_dir=getattr(args, "report", None))
        check_inputs(settings)
        from flows.stages.discover import check_archive

        check_archive(settings.archive or "")
        if settings.report_dir:
            from flows.report.publish import check_target

            check_target(settings.report_dir)
    except usage_errors() as exc:
        return fail("run", exc)
    except ValueError as exc:  # ReportTargetError: --report names a file or a folder of other files
        return fail("run", exc)
    started = time.time()
    code = run_pipeline("run", settings, "archive")
    if code == 0 and settings.report_dir:
        _report_if_not_refreshed(settings.report_dir, settings.store, settings.resolved_catalog_url, started)
    return code


def _report_if_not_refreshed(report_dir: str, store_dir: str, catalog_url: str | None, since: float) -> None:
    """A run with nothing left to do ends before the flow (and its report step): refresh the report here."""
    import os

    index = os.path.join(os.path.abspath(report_dir), "index.html")
    if os.path.isfile(index) and os.path.getmtime(index) >= since:
        return
    from flows.report.build import build_report
    from flows.report.data import open_store_for_reading

    store = open_store_for_reading(store_dir, catalog_url)
    try:
        result = build_report(store, report_dir)
    finally:
        store.close()
    print(f"report: file://{result.index}")
