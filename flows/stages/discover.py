"""Stage 1: find the videos of an archive (a local folder, or an fsspec URL) and make them local.

Local folders are walked recursively; remote archives are listed with fsspec and each file copied once
into a local cache folder (keyed by URL, size and modification stamp) because the decoders need a path.
An entry that cannot be used (a dangling or looping symlink, a file that vanished or cannot be read) is
skipped and reported with its reason; it never stops the listing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import fsspec

from storage.atomic import atomic_path

__all__ = ["Discovery", "SkippedEntry", "VideoSource", "check_archive", "discover_videos", "localize",
           "source_for_uri"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoSource:
    """One video of the archive. uri: as listed (path or URL); local_path: readable file on this machine;
    stamp: modification stamp (mtime in ns, ETag, ...) used with the size to recognise an unchanged file."""

    uri: str
    local_path: str
    size_bytes: int
    stamp: str = ""


@dataclass(frozen=True)
class SkippedEntry:
    """An archive entry that looks like a video but cannot be used, and why."""

    uri: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    sources: list[VideoSource] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)


def _is_remote(archive: str) -> bool:
    protocol = fsspec.utils.get_protocol(archive)
    return protocol not in ("file", "local")


def check_archive(archive: str) -> None:
    """Raise FileNotFoundError unless `archive` (a local file/folder or fsspec URL) exists; lists nothing."""
    if not _is_remote(archive):
        root = os.path.abspath(os.path.expanduser(archive))
        if not (os.path.isfile(root) or os.path.isdir(root)):
            raise FileNotFoundError(f"archive {archive}: no such folder")
        return
    fs, _, paths = fsspec.get_fs_token_paths(archive)
    if not fs.exists(paths[0]):
        raise FileNotFoundError(f"archive {archive}: no such location")


def _local_entry(path: str) -> VideoSource | SkippedEntry:
    try:
        st = os.stat(path)  # follows symlinks: a dangling or looping one fails here
    except OSError as exc:
        if os.path.islink(path):
            return SkippedEntry(path, f"symbolic link to {os.readlink(path)!r} cannot be followed "
                                      f"({exc.strerror or exc})")
        return SkippedEntry(path, f"cannot be read ({exc.strerror or exc})")
    if not os.path.isfile(path):
        return SkippedEntry(path, "not a regular file")
    if not os.access(path, os.R_OK):
        return SkippedEntry(path, "not readable (permissions)")
    return VideoSource(uri=path, local_path=path, size_bytes=int(st.st_size), stamp=str(st.st_mtime_ns))


def discover_videos(archive: str, extensions: tuple[str, ...], cache_dir: str) -> Discovery:
    """All files under `archive` whose name ends with one of `extensions` (case-insensitive), sorted by uri,
    and the entries skipped with their reasons.

    Raises FileNotFoundError when the archive does not exist. Remote files are not copied here (see
    `localize`); their local_path is where they will be cached.
    """
    exts = tuple(e.lower() for e in extensions)
    check_archive(archive)
    if not _is_remote(archive):
        root = os.path.abspath(os.path.expanduser(archive))
        candidates = [root] if os.path.isfile(root) else [
            os.path.join(dirpath, name)
            for dirpath, dirnames, filenames in os.walk(root)
            for name in filenames
            if name.lower().endswith(exts) and not name.startswith(".")
        ]
        entries = [_local_entry(p) for p in sorted(candidates)]
        return Discovery([e for e in entries if isinstance(e, VideoSource)],
                         [e for e in entries if isinstance(e, SkippedEntry)])
    fs, _, paths = fsspec.get_fs_token_paths(archive)
    protocol = archive.split("://", 1)[0]
    found = []
    for path, info in sorted(fs.find(paths[0], detail=True).items()):
        if info.get("type") == "file" and path.lower().endswith(exts):
            uri = path if "://" in path else f"{protocol}://{path}"
            found.append(_remote_source(uri, info, cache_dir))
    return Discovery(found)


def _remote_source(uri: str, info: dict[str, Any], cache_dir: str) -> VideoSource:
    """The cache location of a remote file is keyed by its URL, size and modification stamp."""
    stamp = str(info.get("mtime") or info.get("LastModified") or info.get("ETag") or "")
    digest = hashlib.sha256(f"{uri}|{info.get('size')}|{stamp}".encode()).hexdigest()[:16]
    local = os.path.join(cache_dir, f"{digest}{os.path.splitext(uri)[1].lower()}")
    return VideoSource(uri=uri, local_path=local, size_bytes=int(info.get("size") or 0), stamp=stamp)


def source_for_uri(uri: str, cache_dir: str) -> VideoSource:
    """The VideoSource of a uri recorded in the `videos` table (for describe-only runs)."""
    if not _is_remote(uri):
        path = uri[len("file://"):] if uri.startswith("file://") else uri
        entry = _local_entry(path)
        return entry if isinstance(entry, VideoSource) else VideoSource(uri=uri, local_path=path, size_bytes=0)
    fs, _, paths = fsspec.get_fs_token_paths(uri)
    return _remote_source(uri, fs.info(paths[0]), cache_dir)


def localize(source: VideoSource) -> str:
    """Make sure `source.local_path` holds the video's bytes (copying a remote file once); return it."""
    if source.uri == source.local_path or os.path.exists(source.local_path):
        return source.local_path
    os.makedirs(os.path.dirname(source.local_path), exist_ok=True)
    log.info("copying %s to %s", source.uri, source.local_path)
    fs, _, paths = fsspec.get_fs_token_paths(source.uri)
    with atomic_path(source.local_path) as tmp:
        fs.get(paths[0], tmp)
    return source.local_path
