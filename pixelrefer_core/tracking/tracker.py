"""`track_video`: discovery on keyframes, chunked propagation, association and retirement."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pixelrefer_core.masks import encode_rle, mask_area, mask_box, mask_centroid, mask_iou
from pixelrefer_core.tracking.association import hungarian_match, uncovered_fraction
from pixelrefer_core.tracking.attributes import color_counts, dominant_color, motion_stats
from pixelrefer_core.tracking.segmenter import Segmenter, discover_scored, propagate_scored, seed_mask
from pixelrefer_core.tracking.types import FrameRecord, ObjectTrack, Prompt, TrackerConfig

log = logging.getLogger(__name__)


@dataclass
class _Frame:
    pos: int  # position among sampled frames
    idx: int  # frame index in the video
    t: float
    rgb: np.ndarray


@dataclass
class _Track:
    object_id: int
    discovered_by: str
    records: dict[int, FrameRecord] = field(default_factory=dict)
    centroids: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # idx -> (t, x, y)
    colors: np.ndarray | None = None
    last_mask: np.ndarray | None = None
    last_idx: int = -1
    missing: int = 0
    retired: bool = False

    def velocity(self) -> tuple[float, float]:
        """Median centroid velocity (px per video frame) over the last few records."""
        keys = sorted(self.centroids)[-6:]
        steps = []
        for a, b in zip(keys, keys[1:], strict=False):
            (_, xa, ya), (_, xb, yb) = self.centroids[a], self.centroids[b]
            steps.append(((xb - xa) / (b - a), (yb - ya) / (b - a)))
        if not steps:
            return 0.0, 0.0
        arr = np.asarray(steps)
        return float(np.median(arr[:, 0])), float(np.median(arr[:, 1]))


class _Session:
    """State of one `track_video` call. Holds at most `config.chunk_size` frames."""

    def __init__(self, segmenter: Segmenter, config: TrackerConfig, prompts: Sequence[Prompt]):
        self.seg = segmenter
        self.cfg = config
        self.prompts = sorted(prompts, key=lambda p: p.frame_index)
        self.tracks: dict[int, _Track] = {}
        self.current: dict[int, tuple[np.ndarray, float]] = {}  # masks on self.seed
        self.seed: _Frame | None = None
        self.buffer: list[_Frame] = []
        self.pos = 0
        forced = [p.object_id for p in self.prompts if p.object_id is not None]
        self.next_id = max(forced, default=0) + 1  # auto ids never take an id a prompt asks for
        self.frame_shape: tuple[int, int] | None = None

    # -- driving -------------------------------------------------------------------------------
    def push(self, idx: int, t: float, rgb: np.ndarray) -> None:
        fr = _Frame(self.pos, int(idx), float(t), rgb)
        self.pos += 1
        if self.seed is None:
            self.frame_shape = rgb.shape[:2]
            self.seed = fr
            self._keyframe(fr, [fr])
            return
        self.buffer.append(fr)
        is_key = fr.pos % self.cfg.keyframe_every == 0 or self._prompt_due(fr.idx)
        if is_key or len(self.buffer) >= self.cfg.chunk_size - 1:
            chunk = self._advance()
            if is_key:
                self._keyframe(fr, chunk)

    def finish(self) -> list[ObjectTrack]:
        if self.buffer:
            last = self.buffer[-1]
            chunk = self._advance()
            self._keyframe(last, chunk)  # late entrants get a last chance at discovery
        self.buffer = []
        self.seed = None
        return self._results()

    def _advance(self) -> list[_Frame]:
        chunk = [self.seed, *self.buffer]
        self._propagate(chunk)
        self.seed = self.buffer[-1]
        self.buffer = []
        return chunk

    # -- steps ---------------------------------------------------------------------------------
    def _accept(self, mask: np.ndarray, score: float) -> bool:
        h, w = mask.shape
        frac = mask_area(mask) / float(h * w)
        return self.cfg.min_area_frac <= frac <= self.cfg.max_area_frac and score >= self.cfg.min_score

    def _propagate(self, chunk: list[_Frame]) -> None:
        seeds = {oid: m for oid, (m, _) in self.current.items()}
        out = propagate_scored(self.seg, [f.rgb for f in chunk], seeds)
        if len(out) != len(chunk):
            raise RuntimeError(f"{type(self.seg).__name__}.propagate returned {len(out)} dicts for {len(chunk)} frames")
        last: dict[int, tuple[np.ndarray, float]] = {}
        for fr, masks in zip(chunk[1:], out[1:], strict=True):
            last = {}
            for oid, (m, s) in masks.items():
                if oid in seeds and self._accept(m, s):
                    self._record(oid, fr, m, s)
                    last[oid] = (m, s)
        self.current = last

    def _prompt_due(self, idx: int) -> bool:
        return bool(self.prompts) and self.prompts[0].frame_index <= idx

    def _new_track(self, by: str, object_id: int | None = None) -> _Track:
        oid = self.next_id if object_id is None else int(object_id)
        self.next_id = max(self.next_id, oid + 1)
        tr = _Track(oid, by)
        self.tracks[oid] = tr
        return tr

    def _adopt(self, mask: np.ndarray, object_id: int | None) -> _Track | None:
        """The current track on the object a user seed points at (mask IoU >= iou_match), made the seed's
        track (discovered_by 'prompt', the seed's id when it forces one), so seeding an object that was
        already found does not give it a second id. None when the seed covers no current track."""
        if not self.current:
            return None
        ids = list(self.current)
        iou = mask_iou(mask[None], np.stack([self.current[i][0] for i in ids]))[0]
        best = int(np.argmax(iou))
        if iou[best] < self.cfg.iou_match:
            return None
        tr = self.tracks.pop(ids[best])
        if object_id is not None and int(object_id) != tr.object_id:
            self.current[int(object_id)] = self.current.pop(tr.object_id)
            tr.object_id = int(object_id)
        tr.discovered_by = "prompt"
        self.tracks[tr.object_id] = tr
        return tr

    def _keyframe(self, fr: _Frame, chunk: list[_Frame]) -> None:
        added: dict[int, int] = {}  # track id -> last frame idx recorded before this keyframe
        for p in self._take_prompts(fr.idx):
            m = seed_mask(self.seg, fr.rgb, box=p.box, points=p.points, labels=p.labels)
            if m is None or not self._accept(m, 1.0):
                log.warning(
                    "prompt on frame %d gave an empty, tiny or frame-filling mask; ignored", p.frame_index
                )
                continue
            tr = self.tracks.get(p.object_id) if p.object_id is not None else None
            if tr is None:
                tr = self._adopt(m, p.object_id)
            if tr is None:
                tr = self._new_track("prompt", p.object_id)
                added[tr.object_id] = tr.last_idx
            tr.retired, tr.missing = False, 0
            self._record(tr.object_id, fr, m, 1.0)
            self.current[tr.object_id] = (m, 1.0)

        props = [(m, s) for m, s in discover_scored(self.seg, fr.rgb) if self._accept(m, s)]
        props.sort(key=lambda ms: (-ms[1], -mask_area(ms[0])))
        free = list(range(len(props)))
        if props and self.current:
            ids = list(self.current)
            iou = mask_iou(np.stack([m for m, _ in props]), np.stack([self.current[i][0] for i in ids]))
            matched = {r for r, _ in hungarian_match(iou, self.cfg.iou_match)}
            free = [r for r in free if r not in matched]
        lost = [tr for tr in self.tracks.values() if not tr.retired and tr.object_id not in self.current]
        lost = [tr for tr in lost if tr.last_mask is not None]
        if free and lost:
            sim = np.stack([self._reid_similarity(tr, fr.idx, [props[r][0] for r in free]) for tr in lost], axis=1)
            revived = set()
            for r, c in hungarian_match(sim, 1e-6):
                tr = lost[c]
                m, s = props[free[r]]
                added[tr.object_id] = tr.last_idx
                tr.missing = 0
                self._record(tr.object_id, fr, m, s)
                self.current[tr.object_id] = (m, s)
                revived.add(free[r])
                log.debug("track %d re-identified on frame %d", tr.object_id, fr.idx)
            free = [r for r in free if r not in revived]
        covered = np.zeros(self.frame_shape, dtype=bool)
        for m, _ in self.current.values():
            covered |= m
        for r in free:
            m, s = props[r]
            if uncovered_fraction(m, covered) <= self.cfg.new_object_uncovered:
                continue
            tr = self._new_track("auto")
            added[tr.object_id] = -1
            self._record(tr.object_id, fr, m, s)
            self.current[tr.object_id] = (m, s)
            covered |= m

        for tr in self.tracks.values():
            if tr.retired:
                continue
            if tr.object_id in self.current:
                tr.missing = 0
            else:
                tr.missing += 1
                if tr.missing >= self.cfg.max_missing_keyframes:
                    tr.retired, tr.last_mask = True, None  # free its mask: retired tracks never revive
                    log.debug("track %d retired on frame %d", tr.object_id, fr.idx)

        if self.cfg.backward_pass and added and len(chunk) > 1:
            self._backward(chunk, added)

    def _reid_similarity(self, tr: _Track, idx: int, masks: list[np.ndarray]) -> np.ndarray:
        """Similarity in [0, 1] of each mask to a lost track's predicted position (0 = outside the gate).

        Prediction: last centroid + median recent velocity x frames elapsed. Gate radius: `reid_gate` x
        the object's size (sqrt of its largest recent area) + half the predicted travel. Areas must agree
        within a factor of 4. Centroids, not IoU, because a fast small object may not overlap itself.
        """
        vx, vy = tr.velocity()
        gap = idx - tr.last_idx
        _, cx, cy = tr.centroids[tr.last_idx]
        px, py = cx + vx * gap, cy + vy * gap
        recent = [tr.records[k].area for k in sorted(tr.records)[-6:]]
        ref_area = float(max(recent))
        gate = self.cfg.reid_gate * np.sqrt(ref_area) + 0.5 * np.hypot(vx, vy) * gap
        out = np.zeros(len(masks))
        for i, m in enumerate(masks):
            a = float(mask_area(m))
            if not 0.25 <= a / ref_area <= 4.0:
                continue
            qx, qy = mask_centroid(m)
            d = float(np.hypot(qx - px, qy - py))
            if d < gate:
                out[i] = 1.0 - d / gate
        return out

    def _take_prompts(self, idx: int) -> list[Prompt]:
        due = [p for p in self.prompts if p.frame_index <= idx]
        self.prompts = [p for p in self.prompts if p.frame_index > idx]
        return due

    def _backward(self, chunk: list[_Frame], added: dict[int, int]) -> None:
        """Propagate the new/revived tracks from the keyframe back over the chunk's earlier frames."""
        rev = chunk[::-1]
        wanted = {oid for oid in added if oid in self.current}
        if not wanted:
            return
        # Segmenters that share pixels between objects (motion) need every object seeded to split them.
        joint = getattr(self.seg, "joint_propagation", False)
        seeds = {oid: m for oid, (m, _) in self.current.items() if joint or oid in wanted}
        out = propagate_scored(self.seg, [f.rgb for f in rev], seeds)
        for fr, masks in zip(rev[1:], out[1:], strict=True):
            for oid, (m, s) in masks.items():
                if oid in wanted and fr.idx > added[oid] and self._accept(m, s):
                    self._record(oid, fr, m, s, update_last=False)

    def _record(self, oid: int, fr: _Frame, mask: np.ndarray, score: float, update_last: bool = True) -> None:
        tr = self.tracks[oid]
        h, w = mask.shape
        tr.records[fr.idx] = FrameRecord(
            frame_idx=fr.idx,
            t=fr.t,
            box=tuple(float(v) for v in mask_box(mask)),
            area=mask_area(mask),
            score=float(score),
            mask_rle=encode_rle(mask),
            mask_h=h,
            mask_w=w,
        )
        cx, cy = mask_centroid(mask)
        tr.centroids[fr.idx] = (fr.t, cx, cy)
        counts = color_counts(fr.rgb, mask, max_pixels=1024)
        tr.colors = counts if tr.colors is None else tr.colors + counts
        if update_last and fr.idx >= tr.last_idx:
            tr.last_mask, tr.last_idx = mask, fr.idx

    def _results(self) -> list[ObjectTrack]:
        out = []
        h, w = self.frame_shape or (1, 1)
        for tr in sorted(self.tracks.values(), key=lambda x: x.object_id):
            if len(tr.records) < self.cfg.min_track_frames:
                continue
            frames = [tr.records[k] for k in sorted(tr.records)]
            keys = sorted(tr.centroids)
            speed, direction = motion_stats(
                [tr.centroids[k][0] for k in keys], [tr.centroids[k][1:] for k in keys]
            )
            areas = np.array([r.area for r in frames], dtype=np.float64)
            out.append(
                ObjectTrack(
                    object_id=tr.object_id,
                    discovered_by=tr.discovered_by,
                    frames=frames,
                    color=dominant_color(tr.colors if tr.colors is not None else np.zeros(1)),
                    mean_speed_px_s=speed,
                    direction_deg=direction,
                    mean_area_frac=float(areas.mean() / (h * w)),
                    max_area=int(areas.max()),
                    mean_score=float(np.mean([r.score for r in frames])),
                )
            )
        return out


def track_video(
    frames: Iterable[tuple[int, float, np.ndarray]],
    segmenter: Segmenter,
    config: TrackerConfig,
    prompts: Sequence[Prompt] = (),
) -> list[ObjectTrack]:
    """Track every salient object through sampled `frames` ((frame_idx, t_seconds, RGB HxWx3 uint8)).

    Recipe, and why:
    - Discovery runs only on keyframes (every `keyframe_every` sampled frames, the first and last frame,
      and frames carrying prompts): automatic mask generation is the expensive step, and objects rarely
      appear and vanish within a few sampled frames.
    - Between keyframes the segmenter propagates the current masks over chunks of at most `chunk_size`
      frames (the seed frame + new frames), re-seeded from the last masks of the previous chunk. The
      frames iterator is consumed lazily, so memory is bounded by the chunk whatever the video length;
      SAM 2's memory bank is rebuilt per chunk, which also bounds its growth.
    - On a keyframe, proposals are matched to the propagated masks by mask IoU with an optimal one-to-one
      assignment (Hungarian on 1 - IoU, >= `iou_match`). Leftover proposals are matched to *lost* tracks
      (absent for fewer than `max_missing_keyframes` keyframes) by distance to their motion-predicted
      position, gated by their size (`reid_gate`), which keeps identities through brief occlusions. What is left
      becomes a new object only if more than `new_object_uncovered` of it is outside every tracked mask,
      so parts of tracked objects do not spawn duplicates.
    - A track absent on `max_missing_keyframes` consecutive keyframes is retired and never revived.
    - Masks outside [min_area_frac, max_area_frac] of the frame or scored below `min_score` are dropped
      everywhere: fragments, and the whole-frame masks SAM 2 can emit for a lost object.
    - With `backward_pass`, new (and revived) objects are propagated backwards over the chunk that ends
      at their keyframe, so the frames between the previous keyframe and their discovery are kept.

    Returns tracks sorted by id (ids start at 1, or as prompts force), each with at least
    `min_track_frames` frames, frames sorted by index.
    """
    session = _Session(segmenter, config, prompts)
    for idx, t, rgb in frames:
        session.push(idx, t, rgb)
    return session.finish()


def track_file(path, segmenter: Segmenter, config: TrackerConfig, prompts: Sequence[Prompt] = ()) -> list[ObjectTrack]:
    """`track_video` over a video file sampled at `config.sample_fps`, decoded `config.chunk_size` frames at a time."""
    from pixelrefer_core.video import iter_frames

    return track_video(iter_frames(path, config.sample_fps, config.chunk_size), segmenter, config, prompts)
