"""Keep C-library decoder chatter off the user's terminal.

Two native decoders print on their own: decord's bundled FFmpeg (`[h264 @ 0x...] Invalid NAL unit size`,
`moov atom not found`) through FFmpeg's default log callback, and decord itself (`[07:40:18]
.../video_reader.cc:83: ERROR opening: ...`) through its C++ logger. PyAV's FFmpeg is silent by default
(its log level is None) and, when enabled, logs through Python's `logging` ("libav.*" loggers).

- FFmpeg inside decord: its level is set to QUIET when decord is first imported (`quiet_decord`).
- decord's own C++ messages cannot be turned off, and they are printed only when a file fails to open:
  `native_stderr_captured` points file descriptor 2 at a temporary file around that call, logs what it
  caught at DEBUG, and writes back to the real stderr any line that is not decoder chatter (a line that
  another thread happened to print in that window is delayed, never lost). Captures are serialised by a
  lock; each lasts one `VideoReader` construction (milliseconds).

`set_decoder_logging(verbose=True)` (a `-v` mode) lets both decoders print warnings again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

log = logging.getLogger("pixelrefer_core.video.decoder")

_LOCK = threading.Lock()
_VERBOSE = False
# decord's C++ logger ("[hh:mm:ss] path/file.cc:83: ...") and FFmpeg's default callback ("[h264 @ 0x55...]").
_CHATTER = re.compile(rb"^\s*(\[\d\d:\d\d:\d\d\] \S+\.(cc|h|cpp):\d+:|\[[\w.,-]+ @ 0x[0-9a-fA-F]+\])")


def _ffmpeg_level(verbose: bool) -> int:
    return 24 if verbose else -8  # AV_LOG_WARNING / AV_LOG_QUIET (decord.logging uses FFmpeg's values)


def quiet_decord() -> None:
    """Apply the current verbosity to decord's FFmpeg (call after importing decord)."""
    import decord

    decord.logging.set_level(_ffmpeg_level(_VERBOSE))


def set_decoder_logging(verbose: bool) -> None:
    """verbose=False (default): decoders print nothing; True: FFmpeg warnings reach stderr (decord) and
    Python logging (PyAV, logger 'libav'), and captured decord messages are logged at INFO."""
    global _VERBOSE
    _VERBOSE = bool(verbose)
    if "decord" in sys.modules:
        quiet_decord()
    import av.logging

    av.logging.set_level(av.logging.WARNING if verbose else None)


@contextlib.contextmanager
def native_stderr_captured(what: str) -> Iterator[None]:
    """Run the body with fd 2 redirected; decoder chatter is logged, other lines are written back."""
    with _LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no usable fd 2 (detached process): nothing can reach a terminal anyway
            yield
            return
        with tempfile.TemporaryFile() as sink:
            sys.stderr.flush()
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                _replay(sink.read(), what)


def _replay(data: bytes, what: str) -> None:
    if not data:
        return
    passthrough = []
    for line in data.splitlines(keepends=True):
        if _CHATTER.match(line):
            log.log(logging.INFO if _VERBOSE else logging.DEBUG, "%s: %s", what, line.decode(errors="replace").rstrip())
        else:
            passthrough.append(line)
    if passthrough:
        os.write(2, b"".join(passthrough))


__all__ = ["native_stderr_captured", "quiet_decord", "set_decoder_logging"]
