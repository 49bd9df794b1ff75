"""A store with hand-written descriptions (what a describe model would have answered), for the search tests:
real storage units, real catalog, real views; the answers are chosen so that real wordllama semantics
must rank them as issue 11 says."""

from __future__ import annotations

import datetime as dt

from storage import Store, table_from_records

VIDEO_A = "a1" + "0" * 62  # /videos/park.mp4
VIDEO_B = "b2" + "0" * 62  # /videos/street.mp4
TRACK, OLD_TRACK = "t-new", "t-old"
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)

PUPPY = "a small puppy running across the grass"
CAR = "a red car parked by the road"
BACKPACK = "a man with a backpack walking left"
# (video, object id, colour, caption): dog-like ones rank below the puppy for "little dog" but above the car
# when searching like the puppy.
OBJECTS = [
    (VIDEO_A, 1, "brown", PUPPY),
    (VIDEO_A, 2, "red", CAR),
    (VIDEO_A, 3, "blue", BACKPACK),
    (VIDEO_A, 4, "white", "a terrier barking at a bird"),
    (VIDEO_B, 1, "brown", "a puppy chewing a stick"),
    (VIDEO_B, 2, "red", "a red umbrella"),
    (VIDEO_B, 3, "yellow", "a golden retriever fetching a ball"),
    (VIDEO_B, 4, "blue", "a blue door"),
]
DOG_LIKE = {(VIDEO_A, 4), (VIDEO_B, 1), (VIDEO_B, 3)}
URIS = {VIDEO_A: "/videos/park.mp4", VIDEO_B: "/videos/street.mp4"}
CAPTION_KEY = {VIDEO_A: "d-caption-a", VIDEO_B: "d-caption-b"}


def _object(video_id: str, track_key: str, object_id: int, color: str) -> dict:
    t0 = float(object_id)
    return dict(video_id=video_id, track_key=track_key, object_id=object_id, first_frame=object_id * 10,
                last_frame=object_id * 10 + 20, t_start=t0, t_end=t0 + 2.0, frames_present=21, max_area=400,
                mean_area_frac=0.05, mean_score=0.9, discovered_by="auto", color=color, mean_speed_px_s=3.0,
                direction_deg=180.0, tracked_at=T0)


def _description(video_id: str, track_key: str, object_ids: list[int], describe_key: str, prompt_id: str,
                 task: str, answer: str | None, minutes: int = 0) -> dict:
    return dict(video_id=video_id, track_key=track_key, object_ids=object_ids, describe_key=describe_key,
                prompt_id=prompt_id, prompt=f"prompt {prompt_id}", task=task, answer=answer, model_id="hand-written",
                frames_used=[0], n_tokens=8, latency_ms=1.0, run_id="r0",
                created_at=T0 + dt.timedelta(minutes=minutes))


THUMB_FRAME = 25  # video A object 2's thumbnail


def build_search_store(root: str) -> Store:
    """Two videos, eight objects of the latest tracking with captions, a second prompt on some objects, a
    pair question, a blank answer, and an older tracking whose description must never be found."""
    store = Store.open(root)
    w = store.write_unit
    for vid, uri in URIS.items():
        w("videos", vid, "probe", table_from_records("videos", [dict(
            video_id=vid, uri=uri, size_bytes=1000, fps=10.0, num_frames=100, duration_s=10.0, width=64,
            height=48, probed_at=T0)]))
        w("objects", vid, TRACK, table_from_records("objects", [
            _object(v, TRACK, oid, color) for v, oid, color, _ in OBJECTS if v == vid]))
        w("descriptions", vid, CAPTION_KEY[vid], table_from_records("descriptions", [
            _description(v, TRACK, [oid], CAPTION_KEY[vid], "caption", "caption", text)
            for v, oid, _, text in OBJECTS if v == vid]))
    w("descriptions", VIDEO_A, "d-motion-a", table_from_records("descriptions", [
        _description(VIDEO_A, TRACK, [2], "d-motion-a", "motion", "qa", "It is not moving.", 5),
        _description(VIDEO_A, TRACK, [3], "d-motion-a", "motion", "qa", "   ", 5),  # blank: nothing to embed
        _description(VIDEO_A, TRACK, [1, 4], "d-motion-a", "motion", "qa", "they are far apart", 5),
    ]))
    # Video A has thumbnails (one object's row), video B none: search names the thumbnail's frame when there is one.
    w("object_thumbnails", VIDEO_A, TRACK, table_from_records("object_thumbnails", [dict(
        video_id=VIDEO_A, track_key=TRACK, object_id=2, frame_idx=THUMB_FRAME, t=THUMB_FRAME / 10.0, crop_x0=0,
        crop_y0=0, crop_x1=8, crop_y1=8, crop_jpeg=b"\xff\xd8", crop_w=8, crop_h=8, frame_jpeg=b"\xff\xd8",
        frame_w=64, frame_h=48)]))
    # An older tracking of video A, asked for before the current one: its objects are not the latest.
    w("objects", VIDEO_A, OLD_TRACK, table_from_records("objects", [_object(VIDEO_A, OLD_TRACK, 9, "brown")]))
    w("descriptions", VIDEO_A, "d-old", table_from_records("descriptions", [
        _description(VIDEO_A, OLD_TRACK, [9], "d-old", "caption", "caption", "a little dog, a small puppy")]))
    store.catalog.record_request("r0", "track", VIDEO_A, OLD_TRACK)
    for vid in URIS:
        store.catalog.record_request("r1", "track", vid, TRACK)
    store.refresh_views()
    return store
