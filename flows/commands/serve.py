"""`pixelrefer serve ARCHIVE --store DIR --cron "0 2 * * *" ...`: a cron-scheduled deployment of the
archive flow, served from this process until interrupted.

Needs a Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api) after `prefect server start`.
See docs/deployment.md for GPU work pools and several workers sharing one store.
(Prefect, httpx and the flow are imported inside the functions: every command module is imported when the
CLI builds its parser, and `pixelrefer query` must start in a fraction of a second.)
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from flows.commands._common import (
    add_model_options,
    add_store_options,
    check_inputs,
    fail,
    prepare_prefect,
    settings_from_args,
    usage_errors,
)
from flows.commands.run import add_tracking_options, tracking_values

if TYPE_CHECKING:
    from flows.settings import RunSettings

SERVER_HINT = "start one with: prefect server start  (then export PREFECT_API_URL=http://127.0.0.1:4200/api)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve a cron-scheduled archive deployment (needs a Prefect server)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archive", help="folder or fsspec URL of the videos")
    add_store_options(p)
    add_model_options(p)
    add_tracking_options(p)
    p.add_argument("--cron", required=True, help='cron schedule, e.g. "0 2 * * *" (every day at 02:00)')
    p.add_argument("--name", default="pixelrefer-archive", help="deployment name")
    p.set_defaults(func=run)


def check_server(timeout_s: float = 5.0) -> str | None:
    """None when PREFECT_API_URL is set and its /health answers; else why not."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return "PREFECT_API_URL is not set, so there is no Prefect server to schedule runs"
    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=timeout_s)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return f"the Prefect server at {url} is not reachable ({type(exc).__name__}: {exc})"
    return None


def run(args: argparse.Namespace) -> int:
    prepare_prefect(verbose=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = settings_from_args_with_tracking(args)
        check_inputs(settings)
    except usage_errors() as exc:
        return fail("serve", exc)
    from prefect.schedules import Cron

    try:
        Cron(args.cron)
    except ValueError as exc:
        return fail("serve", f"--cron {args.cron!r} is not a valid cron expression: {exc}")
    problem = check_server()
    if problem:
        return fail("serve", f"{problem}; {SERVER_HINT}", code=1)
    from flows.archive import process_archive

    params = settings.as_params()  # without worker_id: each flow run gets its own
    print(f"serving deployment {args.name!r} of process-archive on cron {args.cron!r}; Ctrl-C to stop")
    process_archive.serve(name=args.name, cron=args.cron, parameters={"settings": params})
    return 0


def settings_from_args_with_tracking(args: argparse.Namespace) -> RunSettings:
    return settings_from_args(args, **tracking_values(args))
