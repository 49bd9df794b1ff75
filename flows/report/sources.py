"""Where a stored video's bytes are now: the first of its recorded paths that still holds them.

Thumbnails and overlay clips decode the source video; the report only says whether it could. A path
counts when it exists and has the size recorded at ingest (a cheap check: hashing every file again would
cost a full read). Remote (fsspec) uris are looked up in the local cache the runs copied them to, and
copied there when `fetch_remote` allows it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from storage import Store

__all__ = ["SourceLookup", "known_uris", "locate_source"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceLookup:
    """`path`: a local file holding the video's bytes, or None with `reason` saying why not."""

    path: str | None
    reason: str | None = None
    uri: str | None = None


def known_uris(store: Store, video_id: str, uri: str | None) -> list[str]:
    """The video's uri from the videos table first, then every other path the catalog saw it at."""
    out = [uri] if uri else []
    out += [p.uri for p in store.catalog.video_paths(video_id) if p.uri not in out]
    return out


def _local(uri: str) -> str | None:
    import fsspec

    if fsspec.utils.get_protocol(uri) not in ("file", "local"):
        return None
    return uri[len("file://"):] if uri.startswith("file://") else uri


def locate_source(uris: Iterable[str], size_bytes: int | None, cache_dir: str,
                  fetch_remote: bool = False) -> SourceLookup:
    """The first of `uris` whose file is there with `size_bytes` bytes (see module docstring)."""
    uris = list(uris)
    problems: list[str] = []
    for uri in uris:
        path = _local(uri)
        if path is not None:
            if not os.path.isfile(path):
                problems.append(f"{uri}: not found (moved or deleted)")
                continue
            size = os.path.getsize(path)
            if size_bytes and size != size_bytes:
                problems.append(f"{uri}: {size} bytes now, {size_bytes} when ingested (the file changed)")
                continue
            return SourceLookup(path, uri=uri)
        try:
            from flows.stages.discover import localize, source_for_uri

            source = source_for_uri(uri, cache_dir)
            if os.path.isfile(source.local_path) or fetch_remote:
                return SourceLookup(localize(source), uri=uri)
            problems.append(f"{uri}: remote, not in the local cache {cache_dir}")
        except (OSError, ValueError) as exc:
            problems.append(f"{uri}: cannot be reached ({exc})")
    if not uris:
        return SourceLookup(None, "no path of this video is recorded")
    return SourceLookup(None, "source video unavailable: " + "; ".join(problems))
