"""Checks on a video file before and after the decoders have had their say: existence, container
signature, the top-level layout of an mp4, and a short form of library error messages."""

from __future__ import annotations

import os
import struct

from pixelrefer_core.errors import EmptyVideoError, VideoNotFoundError

# Leading bytes of containers FFmpeg reads; a file with none of these is "not a video".
_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # mp4 / mov / m4v / 3gp
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # matroska / webm
    (0, b"RIFF"),  # avi
    (0, b"OggS"),
    (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"),  # mpeg-ps
    (0, b"\x00\x00\x01\xb3"),  # mpeg-es
    (0, b"\x30\x26\xb2\x75"),  # asf / wmv
)
_MP4_HEADS = (b"ftyp", b"moov", b"mdat", b"free", b"wide")


def check_file(path: str) -> None:
    """Raise VideoNotFoundError / EmptyVideoError for a path that cannot hold a video at all."""
    if not os.path.exists(path):
        raise VideoNotFoundError(path, "file does not exist")
    if not os.path.isfile(path):
        raise VideoNotFoundError(path, "not a regular file")
    if not os.access(path, os.R_OK):
        raise VideoNotFoundError(path, "file is not readable (permissions)")
    if os.path.getsize(path) == 0:
        raise EmptyVideoError(path, "file is empty (0 bytes)")


def looks_like_container(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if len(head) >= 1 and head[0] == 0x47:  # mpeg-ts sync byte
        return True
    return any(head[off : off + len(sig)] == sig for off, sig in _SIGNATURES)


def mp4_missing_index(path: str) -> bool:
    """True for an mp4/mov whose top-level boxes run past the end of the file without a `moov` (its
    index): a non-faststart file cut short, which no decoder can open."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if fh.read(8)[4:8] not in _MP4_HEADS:
            return False
        pos = 0
        while pos + 8 <= size:
            fh.seek(pos)
            head = fh.read(16)
            box_size, kind = struct.unpack(">I4s", head[:8])
            if kind == b"moov":
                return False
            if box_size == 1 and len(head) == 16:  # 64-bit size follows
                box_size = struct.unpack(">Q", head[8:16])[0]
            elif box_size == 0:  # runs to the end of the file
                return True
            if box_size < 8:
                return False  # not a box layout we understand: let the caller call it corrupt
            pos += box_size
        return pos > size  # the last box was cut


def short(exc: BaseException) -> str:
    """A library error on one line, at most 160 characters (the end, where the reason usually is)."""
    msg = " ".join(str(exc).split())
    return msg[-160:] if len(msg) > 160 else msg


__all__ = ["check_file", "looks_like_container", "mp4_missing_index", "short"]
