"""Export object timelines and descriptions out of a store: csv, parquet, COCO-style JSON, YouTube-VIS
JSON or MOTChallenge text (the last two: storage.export_formats).

- ``csv`` / ``parquet``: `out` is a folder with one file per table: ``videos``, ``objects``,
  ``object_frames``, ``descriptions`` (``.csv`` or ``.parquet``), columns as in storage.schemas
  (in CSV, list columns ``object_ids`` / ``frames_used`` are JSON arrays, NULL is an empty field).
- ``coco-json``: `out` is one JSON file in the style of COCO video datasets (TAO / YouTube-VIS):
  ``videos`` (id, video_id, uri, width, height, fps, num_frames), ``images`` (one per annotated
  frame: id, video (int id), video_id, frame_index, timestamp_s, file_name ``<uri>#frame=<idx>``,
  width, height), ``annotations`` (one per object per frame: image_id, track_id, object_id,
  category_id, bbox ``[x, y, w, h]`` pixels, area (mask pixels), segmentation ``{"size": [h, w],
  "counts": <COCO compressed RLE>}``, score, iscrowd 0), ``tracks`` (id = track_id, video_id,
  track_key, object_id, colour, time span, latest caption), ``categories`` (one: "object") and
  ``descriptions`` (every answer, with the track ids it is about). ``track_id`` is unique across the
  file; ``object_id`` is the id within its (video_id, track_key).

- ``youtube-vis``: `out` is one JSON file in the YouTube-VIS layout; ``mot``: `out` is a folder with one
  ``<sequence>.txt`` per video and ``seqinfo.json`` (sequence -> video_id, uri, fps, size, frames).
- Frames (``write_frames``, coco-json and youtube-vis): the annotated frames are written as JPEG files
  under ``JPEGImages/<sequence>/<frame_idx:05d>.jpg`` beside the JSON, and the documents' file names
  point there. Decoding is the caller's (storage never decodes video): `write_frames(folder, refs)` must
  write every `FrameRef.file_name` under `folder`; each sequence folder is moved into place before the
  JSON, so a document never names a frame that is not there.

By default only the latest tracking of each video is exported (views ``latest_*``); with
``all_tracks=True`` every tracking is. Outputs are written under a temporary name and renamed
into place (storage.atomic), so an interrupted export never leaves a half-written result at `out`.
Works on a read-only store (it reads the views file as the last refresh left it); on a writable store the
views are brought up to date first.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from storage.atomic import atomic_path
from storage.errors import StoreError
from storage.export_formats import (
    FrameRef,
    frame_file,
    frame_refs,
    mot_texts,
    sequence_name,
    youtube_vis_document,
)
from storage.formatting import EXPORT_FORMATS, jsonable
from storage.schemas import conform_table
from storage.store import Store

__all__ = ["EXPORT_FORMATS", "FrameRef", "FrameWriter", "export_store", "frames_folder"]

# write_frames(folder, refs): write each ref's frame as JPEG at folder/ref.file_name (flows.exporting).
FrameWriter = Callable[[str, Sequence[FrameRef]], None]

log = logging.getLogger(__name__)



def _where(video_id: str | None) -> str:
    return "" if video_id is None else "WHERE video_id = " + "'" + video_id.replace("'", "''") + "'"


def _selected_tables(store: Store, video_id: str | None, all_tracks: bool) -> dict[str, pa.Table]:
    con = store.connect()
    try:
        if video_id is not None:
            known = {r[0] for r in con.execute(
                "SELECT video_id FROM videos UNION SELECT video_id FROM objects").fetchall()}
            if video_id not in known:
                sample = ", ".join(sorted(known)[:5]) or "none"
                raise StoreError(f"no video {video_id!r} in store {store.root} (known video ids: {sample})")
        w = _where(video_id)
        prefix = "" if all_tracks else "latest_"
        sources = {
            "videos": f"SELECT * FROM videos {w}",
            "objects": f"SELECT * FROM {prefix}objects {w}",
            "object_frames": f"SELECT * FROM {prefix}object_frames {w}",
            "descriptions": (
                f"SELECT * FROM descriptions {w}" if all_tracks else
                f"SELECT d.* FROM descriptions d JOIN latest_tracks USING (video_id, track_key) {w}"
            ),
        }
        order = {
            "videos": "video_id", "objects": "video_id, track_key, object_id",
            "object_frames": "video_id, track_key, object_id, frame_idx",
            "descriptions": "video_id, track_key, created_at, describe_key",
        }
        return {
            name: conform_table(name, con.sql(f"SELECT * FROM ({sql}) ORDER BY {order[name]}").to_arrow_table())
            for name, sql in sources.items()
        }
    finally:
        con.close()


def _csv_ready(table: pa.Table) -> pa.Table:
    """List columns as JSON text (CSV has no lists)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_list(field.type):
            values = [None if v is None else json.dumps(v) for v in table.column(i).to_pylist()]
            table = table.set_column(i, pa.field(field.name, pa.string()), pa.array(values, pa.string()))
    return table


def _write_folder(tables: dict[str, pa.Table], fmt: str, out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise StoreError(f"export target {out} exists and is not a folder")
    name = os.path.basename(os.path.abspath(out))
    with atomic_path(out, prefix=f".{name}.tmp-", suffix="") as tmp:
        os.makedirs(tmp)
        for table_name, table in tables.items():
            if fmt == "csv":
                pacsv.write_csv(_csv_ready(table), os.path.join(tmp, f"{table_name}.csv"))
            else:
                pq.write_table(table, os.path.join(tmp, f"{table_name}.parquet"))


def coco_document(tables: dict[str, pa.Table], frame_names: bool = False) -> dict[str, Any]:
    """The COCO-style dict (see module docstring) for the selected tables; `frame_names`: images name the
    JPEG files written with the frames (``<sequence>/<frame>.jpg``) instead of ``<uri>#frame=<idx>``."""
    videos = {r["video_id"]: r for r in tables["videos"].to_pylist()}
    frames = tables["object_frames"].to_pylist()
    objects = tables["objects"].to_pylist()
    video_ids = sorted(set(videos) | {r["video_id"] for r in objects} | {r["video_id"] for r in frames})
    video_int = {vid: i + 1 for i, vid in enumerate(video_ids)}

    def size_of(vid: str, row: dict | None = None) -> tuple[int | None, int | None]:
        v = videos.get(vid)
        if v and v["width"] and v["height"]:
            return int(v["width"]), int(v["height"])
        if row is not None and row.get("mask_w"):
            return int(row["mask_w"]), int(row["mask_h"])
        return None, None

    coco_videos = []
    for vid in video_ids:
        v = videos.get(vid, {})
        w, h = size_of(vid, next((f for f in frames if f["video_id"] == vid), None))
        coco_videos.append({"id": video_int[vid], "video_id": vid, "uri": v.get("uri"), "width": w, "height": h,
                            "fps": v.get("fps"), "num_frames": v.get("num_frames")})

    track_int: dict[tuple, int] = {}
    for r in objects:
        track_int[(r["video_id"], r["track_key"], r["object_id"])] = len(track_int) + 1
    captions: dict[tuple, str] = {}
    for d in sorted(tables["descriptions"].to_pylist(), key=lambda d: (d["created_at"] is not None, d["created_at"]
                                                                       or 0, d["describe_key"])):
        if d["task"] == "caption" and len(d["object_ids"]) == 1:
            captions[(d["video_id"], d["track_key"], d["object_ids"][0])] = d["answer"]

    images: dict[tuple[str, int], dict[str, Any]] = {}
    annotations: list[dict[str, Any]] = []
    for f in frames:
        key = (f["video_id"], f["frame_idx"])
        if key not in images:
            w, h = size_of(f["video_id"], f)
            uri = videos.get(f["video_id"], {}).get("uri") or f["video_id"]
            images[key] = {"id": len(images) + 1, "video": video_int[f["video_id"]], "video_id": f["video_id"],
                           "frame_index": f["frame_idx"], "timestamp_s": f["t"],
                           "file_name": frame_file(sequence_name(f["video_id"], videos.get(f["video_id"], {}).get("uri")),
                                                   f["frame_idx"]) if frame_names else f"{uri}#frame={f['frame_idx']}",
                           "width": w, "height": h}
        tkey = (f["video_id"], f["track_key"], f["object_id"])
        if tkey not in track_int:  # frames of an object with no objects row
            track_int[tkey] = len(track_int) + 1
        x0, y0, x1, y1 = (float(f[k]) for k in ("x0", "y0", "x1", "y1"))
        ann = {"id": len(annotations) + 1, "image_id": images[key]["id"], "video": video_int[f["video_id"]],
               "track_id": track_int[tkey], "object_id": f["object_id"], "track_key": f["track_key"],
               "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "area": f["area"], "score": f["score"],
               "iscrowd": 0}
        if f["mask_rle"] is not None:
            ann["segmentation"] = {"size": [f["mask_h"], f["mask_w"]], "counts": f["mask_rle"]}
        annotations.append(ann)

    tracks = []
    for o in objects:
        okey = (o["video_id"], o["track_key"], o["object_id"])
        tracks.append({
            "id": track_int[okey], "video_id": okey[0], "track_key": okey[1], "object_id": okey[2], "category_id": 1,
            **{k: o[k] for k in ("color", "t_start", "t_end", "first_frame", "last_frame", "frames_present",
                                 "discovered_by", "mean_speed_px_s", "direction_deg")},
            "caption": captions.get(okey),
        })
    descriptions = [
        {**d, "track_ids": [track_int.get((d["video_id"], d["track_key"], oid)) for oid in d["object_ids"]]}
        for d in tables["descriptions"].to_pylist()
    ]
    return jsonable({
        "info": {"description": "pixelrefer-archive export", "bbox": "COCO XYWH pixels",
                 "segmentation": "COCO compressed RLE, column-major"},
        "categories": [{"id": 1, "name": "object"}],
        "videos": coco_videos, "images": list(images.values()), "annotations": annotations,
        "tracks": tracks, "descriptions": descriptions,
    })


def frames_folder(out: str | os.PathLike) -> str:
    """Where the frames of a JSON export at `out` go: ``JPEGImages/`` beside it."""
    return os.path.join(os.path.dirname(os.path.abspath(os.fspath(out))), "JPEGImages")


def _write_mot(tables: dict[str, pa.Table], out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise StoreError(f"export target {out} exists and is not a folder")
    videos = {r["video_id"]: r for r in tables["videos"].to_pylist()}
    info = {sequence_name(vid, v["uri"]): {k: v[k] for k in ("video_id", "uri", "fps", "width", "height",
                                                             "num_frames")} for vid, v in videos.items()}
    name = os.path.basename(os.path.abspath(out))
    with atomic_path(out, prefix=f".{name}.tmp-", suffix="") as tmp:
        os.makedirs(tmp)
        for seq, text in mot_texts(tables).items():
            with open(os.path.join(tmp, f"{seq}.txt"), "w") as fh:
                fh.write(text)
        with open(os.path.join(tmp, "seqinfo.json"), "w") as fh:
            json.dump(jsonable(info), fh, indent=1)


def _write_frames(tables: dict[str, pa.Table], out: str, write_frames: FrameWriter) -> int:
    """Every annotated frame as JPEG under frames_folder(out), one sequence folder moved in at a time."""
    root = frames_folder(out)
    refs = frame_refs(tables)
    by_seq: dict[str, list[FrameRef]] = {}
    for ref in refs:
        by_seq.setdefault(ref.file_name.split("/", 1)[0], []).append(ref)
    for seq, seq_refs in by_seq.items():
        with atomic_path(os.path.join(root, seq), prefix=f".{seq}.tmp-", suffix="") as tmp:
            os.makedirs(tmp)
            write_frames(tmp, [FrameRef(r.video_id, r.uri, r.frame_idx, r.file_name.split("/", 1)[1])
                               for r in seq_refs])
    return len(refs)


def export_store(store: Store, fmt: str, out: str | os.PathLike, video_id: str | None = None,
                 all_tracks: bool = False, write_frames: FrameWriter | None = None) -> str:
    """Export the store (or one video) to `out` in `fmt` (see module docstring); returns `out`.

    `write_frames` (coco-json, youtube-vis): also write the annotated frames as JPEG files (see module
    docstring)."""
    if fmt not in EXPORT_FORMATS:
        raise StoreError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if write_frames is not None and fmt not in ("coco-json", "youtube-vis"):
        raise StoreError(f"frames are written for coco-json and youtube-vis exports, not {fmt}")
    out = os.fspath(out)
    if fmt in ("coco-json", "youtube-vis") and os.path.isdir(out):
        raise StoreError(f"export target {out} is a folder; {fmt} writes one JSON file")
    tables = _selected_tables(store, video_id, all_tracks)
    if fmt in ("csv", "parquet"):
        _write_folder(tables, fmt, out)
    elif fmt == "mot":
        _write_mot(tables, out)
    else:
        if write_frames is not None:
            _write_frames(tables, out, write_frames)
        if fmt == "coco-json":
            doc = coco_document(tables, frame_names=write_frames is not None)
        else:
            doc = jsonable(youtube_vis_document(tables))
        name = os.path.basename(os.path.abspath(out))
        with atomic_path(out, prefix=f".{name}.tmp-", suffix="") as tmp, open(tmp, "w") as fh:
            json.dump(doc, fh)
    log.info("exported %s (%s) to %s: %s", store.root, fmt, out,
             ", ".join(f"{n}={t.num_rows}" for n, t in tables.items()))
    return out
