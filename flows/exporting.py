"""Exports with frames (`pixelrefer export --with-frames`): the storage layer lays the documents out and
says which frames they name; this decodes those frames from the source videos (storage never decodes)
and writes them as JPEG files.

Only the annotated frames are decoded (`read_frames`, a batch at a time), never whole videos. A video
whose source file is gone stops the export with a StoreError naming it: a document must not name frames
that are not there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from flows.report.sources import locate_source
from pixelrefer_core.render import encode_jpeg
from pixelrefer_core.video import probe, read_frames
from storage import Store, StoreError
from storage.export import FrameRef, FrameWriter, export_store

__all__ = ["export_with_frames", "frame_writer"]

BATCH = 16
JPEG_QUALITY = 92


def frame_writer(store: Store, cache_dir: str = "") -> FrameWriter:
    """A `write_frames(folder, refs)` for storage.export that decodes from the store's source videos."""
    sizes = {}
    con = store.connect(refresh=False)
    try:
        sizes = dict(con.execute("SELECT video_id, size_bytes FROM videos").fetchall())
    finally:
        con.close()

    def write(folder: str, refs: Sequence[FrameRef]) -> None:
        by_video: dict[tuple[str, str], list[FrameRef]] = {}
        for ref in refs:
            by_video.setdefault((ref.video_id, ref.uri), []).append(ref)
        for (video_id, uri), items in by_video.items():
            uris = [uri] + [p.uri for p in store.catalog.video_paths(video_id) if p.uri != uri]
            found = locate_source([u for u in uris if u], sizes.get(video_id), cache_dir)
            if found.path is None:
                raise StoreError(f"cannot write the frames of {uri or video_id}: {found.reason}")
            info = probe(found.path)
            for start in range(0, len(items), BATCH):
                batch = items[start : start + BATCH]
                frames, _ = read_frames(found.path, [r.frame_idx for r in batch], info=info)
                for ref, frame in zip(batch, frames, strict=True):
                    path = os.path.join(folder, ref.file_name)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "wb") as fh:
                        fh.write(encode_jpeg(frame, JPEG_QUALITY))

    return write


def export_with_frames(store: Store, fmt: str, out: str, video_id: str | None = None, all_tracks: bool = False,
                       cache_dir: str = "") -> str:
    """storage.export.export_store with the annotated frames written beside the JSON (JPEGImages/)."""
    return export_store(store, fmt, out, video_id=video_id, all_tracks=all_tracks,
                        write_frames=frame_writer(store, cache_dir))
