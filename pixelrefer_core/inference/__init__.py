"""Batched describing of tracked objects with PixelRefer or PixelRefer-Lite."""

from .engine import ENGINE_VERSION, DescribeEngine, describe_one
from .frames import select_frames, span_frames
from .items import DescribeItem, DescribeResult, EngineStats

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
