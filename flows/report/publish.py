"""Replacing a report folder atomically: the browser sees the previous complete report or the new one.

The new report is built in a hidden sibling folder (same filesystem), then swapped with the old one in
one `renameat2(RENAME_EXCHANGE)` call where Linux offers it (no moment without a report), else by two
renames (a moment with no folder, never a half-written one). A folder is only ever replaced when it is
empty or holds our marker file: a report never overwrites someone's other files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["MARKER", "ReportTargetError", "check_target", "report_folder"]

log = logging.getLogger(__name__)
MARKER = ".pixelrefer-report"
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


class ReportTargetError(ValueError):
    """The output folder cannot take a report (it is a file, or a folder of other files)."""


def check_target(out: str) -> None:
    """Raise ReportTargetError unless `out` is absent, an empty folder, or a previous report."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise ReportTargetError(f"output folder {out} is a file, not a folder: choose another --out")
    if os.path.isdir(out) and os.listdir(out) and not os.path.isfile(os.path.join(out, MARKER)):
        raise ReportTargetError(f"output folder {out} holds other files and no report ({MARKER} missing): "
                                "choose a new or empty folder")


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux renameat2); False when the system cannot."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    log.debug("renameat2 exchange failed: %s", os.strerror(ctypes.get_errno()))
    return False


def _remove_stale(folder: str, name: str) -> None:
    for entry in os.listdir(folder):
        if entry.startswith(f".{name}.build-") or entry.startswith(f".{name}.old-"):
            shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)


@contextmanager
def report_folder(out: str) -> Iterator[str]:
    """Yield an empty build folder; on a clean exit it replaces `out` (see module docstring)."""
    out = os.path.abspath(out)
    check_target(out)
    parent, name = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    _remove_stale(parent, name)  # left by a crash
    build = os.path.join(parent, f".{name}.build-{uuid.uuid4().hex}")
    os.makedirs(build)
    try:
        yield build
        with open(os.path.join(build, MARKER), "w") as fh:
            fh.write("built by pixelrefer report; this folder is replaced whole at every build\n")
        if os.path.isdir(out):
            if _exchange(build, out):
                shutil.rmtree(build, ignore_errors=True)  # now the old report
                return
            old = os.path.join(parent, f".{name}.old-{uuid.uuid4().hex}")
            os.replace(out, old)
            os.replace(build, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
