"""Errors raised by the compute core. Messages name the thing and the reason, and say what to do."""

from __future__ import annotations


class PixelReferError(Exception):
    """Base class of every error the compute core raises on purpose."""


class VideoError(PixelReferError):
    """A video could not be read. `path` is the file, `reason` a short human explanation."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class VideoNotFoundError(VideoError):
    """The file does not exist or cannot be opened for reading."""


class EmptyVideoError(VideoError):
    """The file exists but holds no bytes or no frames."""


class NotAVideoError(VideoError):
    """The file is not a container/codec the reader understands."""


class CorruptVideoError(VideoError):
    """The container opened but frames cannot be decoded."""


class TruncatedVideoError(VideoError):
    """The file ends early: the first `frames_readable` frames decode, the rest do not."""

    def __init__(self, path: str, reason: str, frames_readable: int):
        self.frames_readable = frames_readable
        super().__init__(path, reason)


class ModelLoadError(PixelReferError):
    """A model or checkpoint could not be found or does not match the expected layout."""


class PromptError(PixelReferError):
    """A prompt (or prompt file) is invalid; the message names the entry and the reason."""


class InputError(PixelReferError, ValueError):
    """A model input is invalid (bad masks, frames, timestamps): the message names the thing (mask i,
    frame j, item key) and the reason. A `ValueError` too, which the processing code raised before."""
