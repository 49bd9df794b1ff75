"""Progress lines for people watching a run: one logger (`flows.progress`) the CLI prints plainly, and a
rate/ETA meter for long loops (frames of a long video, items being described)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

__all__ = ["Meter", "progress", "timed"]

_log = logging.getLogger("flows.progress")


def progress(message: str) -> None:
    """One line of progress."""
    _log.info(message)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Meter:
    """Counts work done out of `total` and reports `what` with rate and ETA at most every `every_s`."""

    def __init__(self, what: str, total: int, unit: str, every_s: float = 5.0):
        self.what, self.total, self.unit, self.every_s = what, max(0, total), unit, every_s
        self.done = 0
        self.started = self._last = time.monotonic()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.what}: {self.done}/{self.total} {self.unit} ({rate:.1f} {self.unit}/s"
        if 0 < self.done < self.total and rate > 0:
            text += f", ETA {_duration((self.total - self.done) / rate)}"
        return text + ")"

    def add(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.every_s and self.done < self.total:
            self._last = now
            progress(self.line())


@contextlib.contextmanager
def timed(into: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the with-block to `into[name]` (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into[name] = into.get(name, 0.0) + time.perf_counter() - start
