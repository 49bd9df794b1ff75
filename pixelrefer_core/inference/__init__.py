"""Batched describing of tracked objects with PixelRefer.

`select_frames` and `ENGINE_VERSION` import without torch (run planning needs them); the engine and
`describe_one` load torch and transformers on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .frames import select_frames
from .version import ENGINE_VERSION

if TYPE_CHECKING:
    from .engine import DescribeEngine, DescribeItem, DescribeResult, describe_one

_LAZY = {"DescribeEngine": ".engine", "DescribeItem": ".engine", "DescribeResult": ".engine",
         "describe_one": ".engine"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENGINE_VERSION",
    "DescribeEngine",
    "DescribeItem",
    "DescribeResult",
    "describe_one",
    "select_frames",
]
