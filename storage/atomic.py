"""Temporary placeholder of storage.atomic (the storage branch brings the real one)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def atomic_path(final_path: str, fs: object = None) -> Iterator[str]:
    folder = os.path.dirname(os.path.abspath(final_path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(final_path)}.tmp-{uuid.uuid4().hex}")
    try:
        yield tmp
        os.replace(tmp, final_path)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
        raise
