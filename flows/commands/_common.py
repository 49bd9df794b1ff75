"""Shared pieces of the sub-commands: common options, settings from arguments, console output, errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from flows.store_location import is_remote, missing_store, store_root, views_db_path

if TYPE_CHECKING:
    from flows.settings import RunSettings


__all__ = ["add_embedder_option", "add_model_options", "add_store_options", "is_remote", "missing_store",
           "store_root", "views_db_path", "check_inputs", "fail", "prepare_prefect", "settings_from_args",
           "setup_console", "usage_errors"]

# Defaults applied before Prefect is first imported (see ../shared/docs/ENVIRONMENT.md).
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def prepare_prefect(verbose: bool = False) -> None:
    """Offline-friendly Prefect defaults. Prefect's console output (task states, tracebacks of failed task
    runs) is for --verbose: the commands print progress, the summary and one line per failure. Its logs
    still reach the Prefect server (and its UI)."""
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def setup_console(verbose: bool = False) -> None:
    """Print `flows.progress` messages plainly on stdout; quieten library INFO logs unless verbose."""
    progress = logging.getLogger("flows.progress")
    if not any(getattr(h, "_pixelrefer", False) for h in progress.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._pixelrefer = True  # type: ignore[attr-defined]
        progress.addHandler(handler)
    progress.setLevel(logging.INFO)
    progress.propagate = False
    if not verbose:
        logging.getLogger().setLevel(logging.WARNING)


def add_store_options(p: argparse.ArgumentParser, catalog: bool = True) -> None:
    """--store (default $PIXELREFER_STORE, resolved when the settings are built) and --catalog-url."""
    p.add_argument("--store", default=os.environ.get("PIXELREFER_STORE") or None,
                   help="store folder or URL, e.g. s3://bucket/prefix (default: $PIXELREFER_STORE)")
    if not catalog:
        return
    p.add_argument("--catalog-url", default=os.environ.get("PIXELREFER_CATALOG_URL") or None,
                   help="SQLAlchemy URL of the catalog, e.g. postgresql+psycopg://... "
                   "(default: $PIXELREFER_CATALOG_URL, else SQLite inside the store)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompts", help="prompt file (YAML or JSON list of {id, task: caption|qa, text})")
    p.add_argument("--model", help="PixelRefer-Lite or PixelRefer checkpoint: HF id "
                   "(Alibaba-DAMO-Academy/PixelRefer-Lite-2B, .../PixelRefer-2B) or local folder")
    p.add_argument("--model-revision", help="hub revision of --model (default main)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument("--profile", choices=["tiny"], help="tiny: offline tiny random model (+ motion segmenter)")
    p.add_argument("--frames-per-object", type=int, help="frames shown to the model per object (default 4)")
    p.add_argument("--max-new-tokens", type=int, help="answer length limit in tokens (default 32)")
    p.add_argument("--batch-size", type=int, help="objects per forward pass (default 8)")
    add_embedder_option(p)


def add_embedder_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--embedder", help="what embeds the descriptions for search: wordllama (the default, offline), "
                   "sentence-transformers:HUB_ID or a folder (default: the store's embedder, else wordllama)")


def settings_from_args(args: argparse.Namespace, **extra: Any) -> RunSettings:
    """RunSettings from parsed arguments (+ extra values); raises SettingsError."""
    from flows.settings import RunSettings

    values = dict(
        store=args.store, catalog_url=getattr(args, "catalog_url", None), prompts_file=getattr(args, "prompts", None),
        model=getattr(args, "model", None), model_revision=getattr(args, "model_revision", None),
        device=getattr(args, "device", None), profile=getattr(args, "profile", None),
        frames_per_object=getattr(args, "frames_per_object", None),
        max_new_tokens=getattr(args, "max_new_tokens", None), batch_size=getattr(args, "batch_size", None),
        embedder=getattr(args, "embedder", None),
    )
    values.update(extra)
    return RunSettings.from_env(**values)


def check_inputs(settings: RunSettings, create_store: bool = True) -> None:
    """Fail before any work when prompts or the store cannot work (raises PromptError / StoreError).

    `create_store=False` (describe): the store must already exist, since there is nothing to describe otherwise.
    """
    from flows.prompts import load_prompts
    from flows.seeds import load_seeds
    from storage import Store, StoreError

    if settings.prompts_file:
        load_prompts(settings.prompts_file)
    if settings.seeds_file:
        load_seeds(settings.seeds_file)
    if settings.where:
        from storage.predicates import validate_predicate

        validate_predicate(settings.where)  # one read-only boolean expression, before anything is recorded
    if os.path.exists(settings.store) and not os.path.isdir(settings.store):
        raise StoreError(f"store {settings.store} is a file, not a folder")
    try:
        Store.open(settings.store, catalog_url=settings.resolved_catalog_url, create=create_store).close()
    except OSError as exc:
        raise StoreError(f"store {settings.store} cannot be used: {exc}") from exc


def usage_errors() -> tuple[type[BaseException], ...]:
    """Errors a user causes and fixes (bad settings, files, store, model): exit 2, one line, no traceback."""
    from flows.settings import SettingsError
    from pixelrefer_core.errors import ModelLoadError, PromptError
    from storage import StoreError

    return (SettingsError, PromptError, StoreError, ModelLoadError, FileNotFoundError)


def fail(command: str, exc: BaseException | str, code: int = 2) -> int:
    print(f"pixelrefer {command}: {exc}", file=sys.stderr)
    return code
