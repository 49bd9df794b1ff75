"""Build the describe engine's inputs for one video: which objects (or pairs), which frames, which masks.

Frames per object come from `select_frames` over that object's timeline (scores, areas). A two-object
prompt is asked of each pair of objects present on common frames (the pairs with the most common frames
first, at most `max_pairs`). `materialize` decodes the frames of one batch of items at a time (a frame
shared by items of the batch is decoded once), so memory is bounded by the batch, not by the video.

Shapes: frames are RGB HxWx3 uint8; masks [n_masks, H, W] bool, ordered object by object then frame by
frame (reference §4); mask_frame_ids are positions into the item's frame list.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pyarrow.parquet as pq

from pixelrefer_core.inference.frames import select_frames, span_frames
from pixelrefer_core.masks import decode_rle
from pixelrefer_core.video import VideoInfo, read_frames
from storage import Store

if TYPE_CHECKING:
    from pixelrefer_core.inference import DescribeItem

LITE, FULL = "lite", "full"  # the model variants: PixelRefer-Lite (objects only) and PixelRefer (video + objects)

__all__ = ["FULL", "LITE", "LABEL_RE", "ItemRequest", "ObjectTimeline", "PlannedItem", "load_labels", "load_timelines", "materialize",
           "plan_items", "with_labels"]


@dataclass(frozen=True)
class ObjectTimeline:
    """One object's per-frame records, sorted by frame_idx (lists of equal length)."""

    object_id: int
    frame_idx: list[int]
    score: list[float]
    area: list[int]
    mask_rle: list[str]
    mask_h: list[int]
    mask_w: list[int]


@dataclass(frozen=True)
class PlannedItem:
    """One question to ask about `object_ids`. `frames`: the annotated frames the masks come from (frame
    indices into the video); `llm_frames`: for the full PixelRefer, the frames its LLM sees (empty for Lite,
    whose LLM sees only the objects)."""

    object_ids: tuple[int, ...]
    frames: tuple[int, ...]
    llm_frames: tuple[int, ...] = ()

    @property
    def frames_used(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.frames) | set(self.llm_frames)))


@dataclass(frozen=True)
class ItemRequest:
    """A planned item with the engine key and question text it is asked with."""

    key: Hashable
    question: str
    planned: PlannedItem


def load_timelines(store: Store, video_id: str, track_key: str,
                   object_ids: Sequence[int] | None = None) -> dict[int, ObjectTimeline]:
    """Timelines of a tracked video's objects (optionally only `object_ids`), read from its unit file."""
    with store.fs.open(store.unit_path("object_frames", video_id, track_key), "rb") as fh:
        rows = pq.ParquetFile(fh).read().sort_by([("object_id", "ascending"), ("frame_idx", "ascending")]).to_pydict()
    wanted = None if object_ids is None else set(object_ids)
    out: dict[int, dict[str, list]] = {}  # object_id -> column -> values
    for i, oid in enumerate(rows["object_id"]):
        if wanted is not None and oid not in wanted:
            continue
        rec = out.setdefault(oid, {k: [] for k in ("frame_idx", "score", "area", "mask_rle", "mask_h", "mask_w")})
        for k in rec:
            rec[k].append(rows[k][i])
    return {oid: ObjectTimeline(object_id=oid, **{k: v for k, v in rec.items()}) for oid, rec in sorted(out.items())}


# `{label}` (one-object prompts) or `{label0}` / `{label1}` (pairs) stand for the objects' concept labels.
LABEL_RE = re.compile(r"\{label(\d?)\}")
UNLABELLED = "object"


def load_labels(store: Store, video_id: str, track_key: str) -> dict[int, str | None]:
    """object_id -> concept label (None: found without a name) of one tracking unit."""
    with store.fs.open(store.unit_path("objects", video_id, track_key), "rb") as fh:
        table = pq.ParquetFile(fh).read()
    if "label" not in table.column_names:  # written before labels existed
        return {}
    return dict(zip(table.column("object_id").to_pylist(), table.column("label").to_pylist(), strict=True))


def with_labels(question: str, labels: Sequence[str | None]) -> str:
    """The question with `{label}` / `{labelN}` replaced by the objects' labels ("object" when unlabelled)."""
    def one(match: re.Match[str]) -> str:
        i = int(match.group(1) or 0)
        return (labels[i] if i < len(labels) else None) or UNLABELLED

    return LABEL_RE.sub(one, question)


def plan_items(timelines: dict[int, ObjectTimeline], n_objects: int, k: int, max_pairs: int,
               variant: str = LITE) -> list[PlannedItem]:
    """The questions of one prompt over one video: one per object (n_objects=1) or per co-occurring pair.

    Lite: the k best views of the object (or pair) carry its masks. Full: one best view carries each mask
    and the LLM sees k frames spread evenly over the object's (or pair's common) visible span.
    """
    items: list[PlannedItem] = []
    if n_objects == 1:
        for oid, tl in timelines.items():
            if tl.frame_idx:
                scores = [s if s is not None else 0.0 for s in tl.score]
                items.append(_planned((oid,), tl.frame_idx, scores, tl.area, k, variant))
        return items
    pairs = []
    for a, b in itertools.combinations(sorted(timelines), 2):
        ta, tb = timelines[a], timelines[b]
        common = sorted(set(ta.frame_idx) & set(tb.frame_idx))
        if common:
            pairs.append((len(common), a, b, common))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    for _, a, b, common in pairs[:max_pairs]:
        ia = {f: i for i, f in enumerate(timelines[a].frame_idx)}
        ib = {f: i for i, f in enumerate(timelines[b].frame_idx)}
        ta, tb = timelines[a], timelines[b]
        scores = [min(ta.score[ia[f]] or 0.0, tb.score[ib[f]] or 0.0) for f in common]
        areas = [min(ta.area[ia[f]], tb.area[ib[f]]) for f in common]
        items.append(_planned((a, b), common, scores, areas, k, variant))
    return items


def _planned(object_ids: tuple[int, ...], frames: list[int], scores: list[float], areas: list[int], k: int,
             variant: str) -> PlannedItem:
    if variant == LITE:
        return PlannedItem(object_ids, tuple(select_frames(frames, scores, areas, k=k)))
    best = tuple(select_frames(frames, scores, areas, k=1))
    return PlannedItem(object_ids, best, tuple(span_frames(frames[0], frames[-1], k)))


def _mask(tl: ObjectTimeline, frame: int, shape: tuple[int, int]) -> np.ndarray:
    i = tl.frame_idx.index(frame)
    mask = decode_rle(tl.mask_rle[i], tl.mask_h[i], tl.mask_w[i]).astype(bool)
    if mask.shape != shape:  # tracker masks at another resolution: nearest-neighbour to the frame size
        mask = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return mask


def materialize(local_path: str, timelines: dict[int, ObjectTimeline], requests: Sequence[ItemRequest],
                video_id: str = "", variant: str = LITE, info: VideoInfo | None = None) -> list[DescribeItem]:
    """The engine items of `requests` (one batch): their frames decoded once, masks decoded from the
    timelines; frame_keys are (video_id, frame_idx), so the engine encodes a frame shared by items once
    (and, for the full model, prefills the prompt prefix of items on the same frames once). `info`: the
    video's probe (saves probing it again for every batch)."""
    from pixelrefer_core.inference import DescribeItem  # loads torch: only where the model runs anyway

    needed = sorted({f for r in requests for f in r.planned.frames_used})
    if not needed:
        return []
    images, times = read_frames(local_path, needed, info=info)
    by_frame = {f: (img, t) for f, img, t in zip(needed, images, times, strict=True)}
    out = []
    for r in requests:
        item = r.planned
        annotated = [by_frame[f][0] for f in item.frames]
        shape = annotated[0].shape[:2]
        masks = np.stack([_mask(timelines[oid], f, shape) for oid in item.object_ids for f in item.frames])
        if variant == LITE:
            positions = list(range(len(item.frames)))
            out.append(DescribeItem(
                key=r.key, question=r.question, frames=annotated, masks=masks,
                mask_frame_ids=positions * len(item.object_ids),
                object_frame_ids=[list(positions) for _ in item.object_ids],
                timestamps=[float(by_frame[f][1]) for f in item.frames],
                frame_keys=[(video_id, f) for f in item.frames],
            ))
            continue
        # Full: one mask per object on the (single) best view; the LLM sees llm_frames, a one-frame span
        # as an image (no timestamps), a longer one as a video.
        seen = [by_frame[f][0] for f in item.llm_frames]
        out.append(DescribeItem(
            key=r.key, question=r.question, frames=seen, masks=masks,
            mask_frame_ids=[item.frames.index(f) for _ in item.object_ids for f in item.frames],
            mask_frames=annotated,
            timestamps=[float(by_frame[f][1]) for f in item.llm_frames] if len(seen) > 1 else None,
            frame_keys=[(video_id, f) for f in item.llm_frames],
        ))
    return out
