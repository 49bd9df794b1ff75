"""Stage 1: find the videos of an archive (a local folder, or an fsspec URL) and make them local.

Local folders are walked recursively; remote archives are listed with fsspec and each file copied once
into a local cache folder (keyed by URL, size and modification stamp) because the decoders need a path.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import fsspec

__all__ = ["VideoSource", "check_archive", "discover_videos", "localize", "source_for_uri"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoSource:
    """One video of the archive. uri: as listed (path or URL); local_path: readable file on this machine."""

    uri: str
    local_path: str
    size_bytes: int


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


def discover_videos(archive: str, extensions: tuple[str, ...], cache_dir: str) -> list[VideoSource]:
    """All files under `archive` whose name ends with one of `extensions` (case-insensitive), sorted by uri.

    Raises FileNotFoundError when the archive does not exist. Remote files are not copied here (see
    `localize`); their local_path is where they will be cached.
    """
    exts = tuple(e.lower() for e in extensions)
    if not _is_remote(archive):
        root = os.path.abspath(os.path.expanduser(archive))
        check_archive(archive)
        if os.path.isfile(root):
            return [VideoSource(uri=root, local_path=root, size_bytes=os.path.getsize(root))]
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.lower().endswith(exts) and not name.startswith("."):
                    path = os.path.join(dirpath, name)
                    found.append(VideoSource(uri=path, local_path=path, size_bytes=os.path.getsize(path)))
        return sorted(found, key=lambda s: s.uri)
    check_archive(archive)
    fs, _, paths = fsspec.get_fs_token_paths(archive)
    base = paths[0]
    protocol = archive.split("://", 1)[0]
    found = []
    for path, info in sorted(fs.find(base, detail=True).items()):
        if info.get("type") == "file" and path.lower().endswith(exts):
            uri = path if "://" in path else f"{protocol}://{path}"
            found.append(_remote_source(uri, info, cache_dir))
    return found


def _remote_source(uri: str, info: dict, cache_dir: str) -> VideoSource:
    """The cache location of a remote file is keyed by its URL, size and modification stamp."""
    stamp = f"{uri}|{info.get('size')}|{info.get('mtime') or info.get('LastModified') or info.get('ETag')}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    local = os.path.join(cache_dir, f"{digest}{os.path.splitext(uri)[1].lower()}")
    return VideoSource(uri=uri, local_path=local, size_bytes=int(info.get("size") or 0))


def source_for_uri(uri: str, cache_dir: str) -> VideoSource:
    """The VideoSource of a uri recorded in the `videos` table (for describe-only runs)."""
    if not _is_remote(uri):
        path = uri[len("file://"):] if uri.startswith("file://") else uri
        return VideoSource(uri=uri, local_path=path, size_bytes=os.path.getsize(path) if os.path.exists(path) else 0)
    fs, _, paths = fsspec.get_fs_token_paths(uri)
    return _remote_source(uri, fs.info(paths[0]), cache_dir)


def localize(source: VideoSource) -> str:
    """Make sure `source.local_path` holds the video's bytes (copying a remote file once); return it."""
    if source.uri == source.local_path or os.path.exists(source.local_path):
        return source.local_path
    os.makedirs(os.path.dirname(source.local_path), exist_ok=True)
    tmp = f"{source.local_path}.part-{os.getpid()}"
    log.info("copying %s to %s", source.uri, source.local_path)
    with fsspec.open(source.uri, "rb") as src, open(tmp, "wb") as dst:
        while chunk := src.read(1 << 22):
            dst.write(chunk)
    os.replace(tmp, source.local_path)
    return source.local_path
