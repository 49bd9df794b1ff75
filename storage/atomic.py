"""Write a file or a folder under a temporary name, then move it into place: readers never see half of it.

    with atomic_path("/store/objects/video_id=ab/k.parquet") as tmp:
        pq.write_table(table, tmp)            # tmp: ".tmp-<uuid>.partial" in the same folder
    # now the final path holds the complete file; on an exception nothing was moved and tmp is gone

Local paths: the temporary is fsync'ed (every file of a folder too), moved with `os.replace` (atomic on
POSIX within one filesystem, which is why the temporary lives in the final folder) and the folder entry is
fsync'ed. A folder replaces an existing folder in two renames (old one aside, new one in, old one
removed): there is a short moment with no folder at `final_path`, never a half-written one.

fsspec filesystems (object stores): the temporary key is written, then moved (`fs.mv`); object stores
have no atomic rename, but readers that glob ``*.parquet`` never match the temporary's name.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # fsspec is imported only when a caller passes a filesystem
    from fsspec import AbstractFileSystem

__all__ = ["atomic_path", "TEMP_PREFIX"]

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"


def _is_local(fs: AbstractFileSystem | None) -> bool:
    if fs is None:
        return True
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _fsync_path(path: str) -> None:
    """fsync a file, or every file of a folder and the folder itself."""
    if os.path.isdir(path):
        for folder, _, names in os.walk(path):
            for name in names:
                _fsync_file(os.path.join(folder, name))
            _fsync_dir(folder)
    else:
        _fsync_file(path)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - some filesystems refuse to open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - e.g. fsync of a folder unsupported
        pass
    finally:
        os.close(fd)


def _remove_local(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
    except OSError:  # pragma: no cover - best effort; stale temporaries are cleaned on store open
        log.warning("could not remove temporary %s", path)


def _move_local(tmp: str, final: str) -> None:
    if os.path.isdir(tmp) and os.path.isdir(final) and not os.path.islink(final):
        folder, name = os.path.split(final)
        old = os.path.join(folder, f".{name}.old-{uuid.uuid4().hex}")
        os.replace(final, old)
        try:
            os.replace(tmp, final)
        except BaseException:
            os.replace(old, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


@contextmanager
def atomic_path(
    final_path: str | os.PathLike[str],
    fs: AbstractFileSystem | None = None,
    *,
    prefix: str = TEMP_PREFIX,
    suffix: str = ".partial",
) -> Iterator[str]:
    """Yield a temporary path next to `final_path`; on a clean exit move it to `final_path` (replacing).

    The body creates a file or a folder at the yielded path. On an exception the temporary is removed
    and the exception propagates; `final_path` is untouched. `fs`: an fsspec filesystem (None: local).
    The parent folder is created if missing.
    """
    final = os.fspath(final_path)
    local = _is_local(fs)
    if local:
        final = os.path.abspath(final)
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f"{prefix}{uuid.uuid4().hex}{suffix}")
    else:
        assert fs is not None
        folder = final.rstrip("/").rsplit("/", 1)[0]
        fs.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/{prefix}{uuid.uuid4().hex}{suffix}"
    try:
        yield tmp
        if local:
            _fsync_path(tmp)
            _move_local(tmp, final)
            _fsync_dir(os.path.dirname(final))
        else:
            assert fs is not None
            fs.mv(tmp, final, recursive=fs.isdir(tmp))
    except BaseException:
        if local:
            _remove_local(tmp)
        else:
            assert fs is not None
            try:
                if fs.exists(tmp):
                    fs.rm(tmp, recursive=True)
            except OSError:  # pragma: no cover - best effort
                log.warning("could not remove temporary %s", tmp)
        raise
