"""Export documents other tools open: YouTube-VIS JSON and MOTChallenge text, plus the frame file names
both (and coco-json with frames) use. Pure functions of the selected tables (storage.export picks them).

- Sequence names: one per video, ``<file stem>-<first 8 hex of video_id>`` (safe in file names, unique).
- Frame files: ``<sequence>/<frame_idx:05d>.jpg`` relative to an image root (``JPEGImages/`` beside the
  JSON when frames are written), one per annotated frame (a frame any object has a record on).
- YouTube-VIS: ``videos`` (id, width, height, length, file_names, plus our video_id, uri, fps and
  frame_indices), ``annotations`` (one per object: video_id, category_id, segmentations / bboxes / areas
  lists aligned with the video's file_names, None where the object is absent; COCO compressed RLE,
  bbox [x, y, w, h] pixels, iscrowd 0; plus track_key, object_id, score), ``categories`` (the objects'
  labels, else a single "object").
- MOT: per video ``frame,id,x,y,w,h,conf,-1,-1,-1`` with frame = frame_idx + 1 and x, y 1-based (the
  MOTChallenge convention, as motmetrics reads it), id = object_id, conf = score; exact decimal copies of
  the stored float32 boxes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["FrameRef", "annotated_frames", "frame_file", "frame_refs", "mot_texts", "sequence_name",
           "youtube_vis_document"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class FrameRef:
    """One frame an export names: the video (id, uri), its frame index and its file (relative name)."""

    video_id: str
    uri: str
    frame_idx: int
    file_name: str


def sequence_name(video_id: str, uri: str | None) -> str:
    stem = os.path.splitext(os.path.basename((uri or "").rstrip("/")))[0]
    stem = _UNSAFE.sub("_", stem).strip("._-")[:60] or "video"
    return f"{stem}-{video_id[:8]}"


def frame_file(seq: str, frame_idx: int) -> str:
    return f"{seq}/{int(frame_idx):05d}.jpg"


def _num(value: float) -> str:
    """Shortest decimal that reads back as the same float32 (the type the boxes are stored in)."""
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def annotated_frames(tables: dict[str, pa.Table]) -> dict[str, list[int]]:
    """video_id -> sorted frame indices any object has a record on."""
    frames = tables["object_frames"]
    out: dict[str, set[int]] = {}
    for vid, idx in zip(frames.column("video_id").to_pylist(), frames.column("frame_idx").to_pylist(), strict=True):
        out.setdefault(vid, set()).add(int(idx))
    return {vid: sorted(v) for vid, v in sorted(out.items())}


def frame_refs(tables: dict[str, pa.Table]) -> list[FrameRef]:
    """Every frame file the documents name, by video then frame."""
    uris = {r["video_id"]: r["uri"] for r in tables["videos"].select(["video_id", "uri"]).to_pylist()}
    return [FrameRef(vid, uris.get(vid) or "", idx, frame_file(sequence_name(vid, uris.get(vid)), idx))
            for vid, idxs in annotated_frames(tables).items() for idx in idxs]


def _categories(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str | None, int]]:
    """Categories from the objects' labels (plus "object" for unlabelled ones), or one "object"."""
    labels: list[str] = sorted({str(o["label"]) for o in objects if o.get("label")})
    if not labels:
        return [{"id": 1, "name": "object", "supercategory": "object"}], {}
    ids: dict[str | None, int] = {name: i + 1 for i, name in enumerate(labels)}
    if any(not o.get("label") for o in objects):
        ids[None] = len(labels) + 1
    cats = [{"id": i, "name": name or "object", "supercategory": "object"} for name, i in ids.items()]
    return cats, ids


def youtube_vis_document(tables: dict[str, pa.Table]) -> dict[str, Any]:
    """The YouTube-VIS dict of the selected tables (see module docstring)."""
    videos = {r["video_id"]: r for r in tables["videos"].to_pylist()}
    objects = tables["objects"].to_pylist()
    frames_of = annotated_frames(tables)
    video_ids = sorted(set(videos) | set(frames_of) | {o["video_id"] for o in objects})
    vis_videos, position = [], {}
    for i, vid in enumerate(video_ids, 1):
        v = videos.get(vid, {})
        seq = sequence_name(vid, v.get("uri"))
        idxs = frames_of.get(vid, [])
        position[vid] = {f: p for p, f in enumerate(idxs)}
        vis_videos.append({"id": i, "width": v.get("width"), "height": v.get("height"), "length": len(idxs),
                           "file_names": [frame_file(seq, f) for f in idxs], "video_id": vid, "uri": v.get("uri"),
                           "fps": v.get("fps"), "frame_indices": idxs})
    video_int = {vid: i for i, vid in enumerate(video_ids, 1)}
    categories, cat_ids = _categories(objects)
    by_track: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for f in tables["object_frames"].to_pylist():
        by_track.setdefault((f["video_id"], f["track_key"], int(f["object_id"])), []).append(f)
    labels = {(o["video_id"], o["track_key"], int(o["object_id"])): o.get("label") for o in objects}
    annotations: list[dict[str, Any]] = []
    for key in sorted(by_track):
        vid = key[0]
        n = len(position[vid])
        segs: list[Any] = [None] * n
        boxes: list[Any] = [None] * n
        areas: list[Any] = [None] * n
        scores = []
        for f in by_track[key]:
            p = position[vid][int(f["frame_idx"])]
            x0, y0, x1, y1 = (float(f[k]) for k in ("x0", "y0", "x1", "y1"))
            boxes[p] = [x0, y0, x1 - x0, y1 - y0]
            areas[p] = int(f["area"])
            if f["mask_rle"] is not None:
                segs[p] = {"size": [int(f["mask_h"]), int(f["mask_w"])], "counts": f["mask_rle"]}
            if f["score"] is not None:
                scores.append(float(f["score"]))
        label = labels.get(key)
        annotations.append({"id": len(annotations) + 1, "video_id": video_int[vid],
                            "category_id": cat_ids.get(label, cat_ids.get(None, 1)) if cat_ids else 1,
                            "segmentations": segs, "bboxes": boxes, "areas": areas, "iscrowd": 0,
                            "track_key": key[1], "object_id": key[2], "label": label,
                            "score": sum(scores) / len(scores) if scores else None})
    return {"info": {"description": "pixelrefer-archive export (YouTube-VIS layout)",
                     "file_names": "relative to JPEGImages/ beside this file (written with --with-frames)"},
            "licenses": [], "categories": categories, "videos": vis_videos, "annotations": annotations}


def mot_texts(tables: dict[str, pa.Table]) -> dict[str, str]:
    """sequence name -> MOTChallenge text of that video (see module docstring)."""
    uris = {r["video_id"]: r["uri"] for r in tables["videos"].select(["video_id", "uri"]).to_pylist()}
    lines: dict[str, list[tuple[int, int, str]]] = {}
    for f in tables["object_frames"].to_pylist():
        seq = sequence_name(f["video_id"], uris.get(f["video_id"]))
        x0, y0, x1, y1 = (float(np.float32(f[k])) for k in ("x0", "y0", "x1", "y1"))
        conf = _num(f["score"]) if f["score"] is not None else "1"
        row = (f"{int(f['frame_idx']) + 1},{int(f['object_id'])},{repr(x0 + 1)},{repr(y0 + 1)},"
               f"{repr(x1 - x0)},{repr(y1 - y0)},{conf},-1,-1,-1")
        lines.setdefault(seq, []).append((int(f["frame_idx"]), int(f["object_id"]), row))
    for vid, uri in uris.items():  # a video without objects gets an empty file
        lines.setdefault(sequence_name(vid, uri), [])
    return {seq: "".join(r + "\n" for _, _, r in sorted(rows)) for seq, rows in sorted(lines.items())}
