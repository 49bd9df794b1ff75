"""Batched describing of tracked objects with PixelRefer-Lite."""

from .engine import ENGINE_VERSION, DescribeEngine, DescribeItem, DescribeResult, describe_one
from .frames import select_frames

__all__ = [
    "ENGINE_VERSION",
    "DescribeEngine",
    "DescribeItem",
    "DescribeResult",
    "describe_one",
    "select_frames",
]
