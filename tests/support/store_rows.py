"""A small hand-made store with real COCO RLE masks: constants and row builders shared by the storage tests
(tests/storage) and the CLI tests that read such a store (tests/flows). Tests reach it as the `fx` fixture."""

from __future__ import annotations

import datetime as dt

import numpy as np
from pycocotools import mask as mask_utils

from storage import Store, table_from_records

VIDEO_A = "a" * 64
VIDEO_B = "b" * 64
OLD_TRACK, NEW_TRACK = "track-old", "track-new"
T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
H, W = 24, 32


def box_mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """HxW bool mask of a box (x1/y1 exclusive)."""
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def rle(mask: np.ndarray) -> str:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")


def object_row(video_id, track_key, object_id, t_start, t_end, color, direction, speed=5.0, tracked_at=None,
               label=None, label_score=None):
    return dict(
        video_id=video_id, track_key=track_key, object_id=object_id, first_frame=int(t_start * 10),
        last_frame=int(t_end * 10), t_start=t_start, t_end=t_end, frames_present=int((t_end - t_start) * 10) + 1,
        max_area=40, mean_area_frac=0.05, mean_score=0.9, discovered_by="auto", color=color,
        mean_speed_px_s=speed, direction_deg=direction, tracked_at=tracked_at, label=label, label_score=label_score,
    )


def frame_rows(video_id, track_key, object_id, frames, x_start, dx):
    """One row per frame index; a 4x3 box moving by dx pixels per frame, 10 fps."""
    rows = []
    for i, f in enumerate(frames):
        x0 = x_start + dx * i
        m = box_mask(x0, 5, x0 + 4, 8)
        rows.append(dict(video_id=video_id, track_key=track_key, object_id=object_id, frame_idx=f, t=f / 10.0,
                         x0=x0, y0=5, x1=x0 + 4, y1=8, area=int(m.sum()), score=0.9, mask_rle=rle(m),
                         mask_h=H, mask_w=W))
    return rows


def description_row(video_id, track_key, object_ids, describe_key, prompt, task, answer, created_at):
    return dict(video_id=video_id, track_key=track_key, object_ids=object_ids, describe_key=describe_key,
                prompt_id="p-" + prompt[:12].replace(" ", "_"), prompt=prompt, task=task, answer=answer,
                model_id="tiny", frames_used=[0, 1], n_tokens=5, latency_ms=12.5, run_id="run1",
                created_at=created_at)


def populate(store: Store) -> None:
    """Video A tracked twice (the newer tracking has 3 objects), video B once (1 object)."""
    w = store.write_unit
    for vid, uri in ((VIDEO_A, "/videos/cam3.mp4"), (VIDEO_B, "/videos/cam4.mp4")):
        w("videos", vid, "probe", table_from_records("videos", [dict(
            video_id=vid, uri=uri, size_bytes=1000, fps=10.0, num_frames=50, duration_s=5.0,
            width=W, height=H, probed_at=T0)]))
    w("objects", VIDEO_A, OLD_TRACK, table_from_records("objects", [
        object_row(VIDEO_A, OLD_TRACK, 1, 0.0, 4.0, "blue", 0.0, tracked_at=T0)]))
    w("objects", VIDEO_A, NEW_TRACK, table_from_records("objects", [
        object_row(VIDEO_A, NEW_TRACK, 1, 0.0, 0.3, "red", 180.0, tracked_at=T0 + dt.timedelta(hours=1),
                   label="car", label_score=0.75),
        object_row(VIDEO_A, NEW_TRACK, 2, 0.1, 0.4, "green", 90.0, tracked_at=T0 + dt.timedelta(hours=1),
                   label="person", label_score=0.5),
        object_row(VIDEO_A, NEW_TRACK, 3, 2.0, 3.0, "red", 0.0, tracked_at=T0 + dt.timedelta(hours=1),
                   label="car", label_score=0.25),
    ]))
    w("object_frames", VIDEO_A, NEW_TRACK, table_from_records("object_frames",
        frame_rows(VIDEO_A, NEW_TRACK, 1, [0, 1, 2, 3], 20, -2) + frame_rows(VIDEO_A, NEW_TRACK, 2, [1, 2, 3, 4], 2, 0)))
    w("object_frames", VIDEO_A, OLD_TRACK, table_from_records("object_frames",
        frame_rows(VIDEO_A, OLD_TRACK, 1, [0, 1], 0, 1)))
    w("objects", VIDEO_B, NEW_TRACK, table_from_records("objects", [
        object_row(VIDEO_B, NEW_TRACK, 1, 1.0, 2.0, "red", 170.0, tracked_at=T0)]))
    w("object_frames", VIDEO_B, NEW_TRACK, table_from_records("object_frames",
        frame_rows(VIDEO_B, NEW_TRACK, 1, [10, 11], 10, -1)))
    w("descriptions", VIDEO_A, "desc-v1", table_from_records("descriptions", [
        description_row(VIDEO_A, NEW_TRACK, [1], "desc-v1", "Describe this object.", "caption",
                        "A small square.", T0),
        description_row(VIDEO_A, NEW_TRACK, [1, 2], "desc-v1", "Are they close?", "qa", "Yes.", T0),
    ]))
    w("descriptions", VIDEO_A, "desc-v2", table_from_records("descriptions", [
        description_row(VIDEO_A, NEW_TRACK, [1], "desc-v2", "Describe this object.", "caption",
                        "A red car driving left.", T0 + dt.timedelta(minutes=5)),
    ]))
    w("descriptions", VIDEO_B, "desc-v1", table_from_records("descriptions", [
        description_row(VIDEO_B, NEW_TRACK, [1], "desc-v1", "Describe this object.", "caption",
                        "A red bus.", T0),
    ]))
