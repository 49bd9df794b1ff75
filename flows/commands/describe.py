"""`pixelrefer describe --store DIR --prompts FILE [--where SQL] [--model ...]`: new prompts or a new
model over objects already tracked. No tracking; only descriptions are added.

--where is a SQL predicate over the latest tracking's objects and their videos, e.g.
  --where "color = 'red' AND direction_deg BETWEEN 135 AND 225"
  --where "videos.uri LIKE '%cam3%'"
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
    p = subparsers.add_parser("describe", help="describe already tracked objects with new prompts or model",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_options(p)
    add_model_options(p)
    p.add_argument("--where", help="SQL predicate over objects/videos selecting the objects to describe")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    prepare_prefect(args.verbose)
    setup_console(args.verbose)
    try:
        settings = settings_from_args(args, where=args.where)
        check_inputs(settings, create_store=False)
    except usage_errors() as exc:
        return fail("describe", exc)
    return run_pipeline("describe", settings, "describe")
