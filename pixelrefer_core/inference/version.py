"""The describe engine's version string: part of every describe_key (bump when answers change).

Its own module so that computing keys (planning a run) does not import torch."""

ENGINE_VERSION = "pixelrefer-lite-describe-1"

__all__ = ["ENGINE_VERSION"]
