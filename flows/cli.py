"""The `pixelrefer` command line: one sub-command per module, wired here.

Each sub-command module exposes `register(subparsers)` which adds its parser and sets
`func=<callable(args) -> int>` as the parser default. Modules are imported lazily-by-name so a broken
optional dependency of one command never stops the others from working.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

OUR_LOGGERS = ("flows", "pixelrefer_core", "storage")

# Sub-command modules, in the order `pixelrefer --help` lists them.
COMMAND_MODULES = [
    "flows.commands.run",
    "flows.commands.describe",
    "flows.commands.status",
    "flows.commands.serve",
    "flows.commands.demo",
    "flows.commands.query",
    "flows.commands.search",
    "flows.commands.index",
    "flows.commands.export",
    "flows.commands.thumbnails",
    "flows.commands.render",
    "flows.commands.report",
    "flows.commands.verify",
    "flows.commands.release",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixelrefer",
        description="Track every object in a video archive, describe it with PixelRefer(-Lite), search it and query it with SQL.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # command not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `pixelrefer` entry point. Ctrl-C at any moment ends it with one line and exit 130 (the
    commands that hold resources, like a run or a query, clean up in their own handlers first)."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    try:
        return _main(args_list)
    except KeyboardInterrupt:
        command = next((a for a in args_list if not a.startswith("-")), "")
        print(f"pixelrefer{' ' + command if command else ''}: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Library logs are for -v; what a user needs (progress, summaries, errors) is printed by the commands.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.WARNING)
            # Only our own warnings: libraries' records (Prefect's task states and tracebacks, its event
            # workers' shutdown notes, ...) are for -v; Prefect's still reach its server and UI.
            handler.addFilter(lambda record: record.name.split(".", 1)[0] in OUR_LOGGERS)
    if args.verbose:
        from pixelrefer_core.video import set_decoder_logging

        set_decoder_logging(True)  # FFmpeg's own warnings too
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
