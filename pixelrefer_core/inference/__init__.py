"""Batched describing of tracked objects with PixelRefer or PixelRefer-Lite.

`select_frames`, `span_frames` and `ENGINE_VERSION` import without torch (planning a run needs them);
the engine, its items and `describe_one` load torch and transformers on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .frames import select_frames, span_frames
from .version import ENGINE_VERSION

if TYPE_CHECKING:
    from .engine import DescribeEngine, describe_one
    from .items import DescribeItem, DescribeResult, EngineStats

_LAZY = {"DescribeEngine": ".engine", "describe_one": ".engine", "DescribeItem": ".items",
         "DescribeResult": ".items", "EngineStats": ".items"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENGINE_VERSION",
    "DescribeEngine",
    "DescribeItem",
    "DescribeResult",
    "EngineStats",
    "describe_one",
    "select_frames",
    "span_frames",
]
