"""`track_video`: discovery on keyframes, chunked propagation, association, re-identification, retirement."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from pixelrefer_core.masks import mask_area, mask_centroid, mask_iou
from pixelrefer_core.tracking.association import hungarian_match, uncovered_fraction
from pixelrefer_core.tracking.device_frames import Prefetcher
from pixelrefer_core.tracking.prompts import prompt_mask_or_reason
from pixelrefer_core.tracking.segmenter import (
    Segmenter,
    discover_detections,
    discover_detections_batch,
    propagate_scored,
)
from pixelrefer_core.tracking.tracks import Frame, Track, to_object_tracks
from pixelrefer_core.tracking.types import Detection, ObjectTrack, Prompt, SkippedPrompt, TrackerConfig
from pixelrefer_core.video import VideoInfo

log = logging.getLogger(__name__)

PromptSkipped = Callable[[SkippedPrompt], None]


class _Session:
    """State of one `track_video` call. Holds at most `config.chunk_size` frames (the seed frame and the
    frames waiting to be propagated)."""

    def __init__(
        self, segmenter: Segmenter, config: TrackerConfig, prompts: Sequence[Prompt], on_skipped: PromptSkipped | None
    ):
        self.seg = segmenter
        self.cfg = config
        self.prompts = sorted(prompts, key=lambda p: p.frame_index)
        self.on_skipped = on_skipped
        self.tracks: dict[int, Track] = {}
        self.by_forced: dict[int, int] = {}  # forced object id -> internal key
        self.current: dict[int, tuple[np.ndarray, float]] = {}  # masks on self.seed, by internal key
        self.seed: Frame | None = None
        self.pending: list[Frame] = []  # frames after the seed, not yet propagated
        self.since_cut = 0
        self.pos = 0
        self.next_key = 1
        self.frame_shape: tuple[int, int] = (1, 1)

    # -- driving -------------------------------------------------------------------------------
    def push(self, idx: int, t: float, rgb: np.ndarray) -> None:
        fr = Frame(self.pos, int(idx), float(t), rgb)
        self.pos += 1
        self._take_prompts(fr)
        if self.seed is None:
            self.frame_shape = (int(rgb.shape[0]), int(rgb.shape[1]))
            fr.key = True
            self.seed = fr
            self._keyframe(fr, [fr], discover_detections(self.seg, fr.rgb))
            return
        fr.key = fr.pos % self.cfg.keyframe_every == 0 or bool(fr.prompts)
        self.pending.append(fr)
        self.since_cut += 1
        if fr.key or self.since_cut >= self.cfg.chunk_size - 1:
            self.since_cut = 0
            fr.cut = True
        if len(self.pending) >= self.cfg.chunk_size - 1:
            self._flush(final=False)

    def finish(self) -> list[ObjectTrack]:
        if self.pending:
            self.pending[-1].key = True  # late entrants get a last chance at discovery
            self._flush(final=True)
        for p in self.prompts:
            self._skip(p, None, "the video ends before the seed's frame")
        self.prompts = []
        self.seed = None
        return to_object_tracks(list(self.tracks.values()), self.frame_shape, self.cfg.min_track_frames)

    def _flush(self, final: bool) -> None:
        """Propagate and process every complete chunk of the pending frames (all of them when final).

        The keyframes of the window are detected in one batched call (segmenters that batch, e.g. SAM 3);
        the chunks are then processed in order exactly as if each keyframe had been met on its own.
        """
        ends = [i for i, f in enumerate(self.pending) if f.cut or f.key]
        if final:
            ends = sorted(set(ends) | {len(self.pending) - 1})
        if not ends:
            return
        detections: dict[int, list[Detection]] = {}
        if hasattr(self.seg, "discover_labelled_batch"):  # stateless detectors only: others keep their call order
            keyframes = [self.pending[i] for i in ends if self.pending[i].key]
            found = discover_detections_batch(self.seg, [f.rgb for f in keyframes])
            detections = {f.pos: d for f, d in zip(keyframes, found, strict=True)}
        start = 0
        for end in ends:
            assert self.seed is not None
            chunk = [self.seed, *self.pending[start : end + 1]]
            self._propagate(chunk)
            last = chunk[-1]
            self.seed = last
            if last.key:
                dets = detections[last.pos] if last.pos in detections else discover_detections(self.seg, last.rgb)
                self._keyframe(last, chunk, dets)
            start = end + 1
        self.pending = self.pending[start:]

    # -- steps ---------------------------------------------------------------------------------
    def _accept(self, mask: np.ndarray, score: float) -> bool:
        h, w = mask.shape
        frac = mask_area(mask) / float(h * w)
        return self.cfg.min_area_frac <= frac <= self.cfg.max_area_frac and score >= self.cfg.min_score

    def _propagate(self, chunk: list[Frame]) -> None:
        seeds = {key: m for key, (m, _) in self.current.items()}
        out = propagate_scored(self.seg, [f.rgb for f in chunk], seeds)
        if len(out) != len(chunk):
            raise RuntimeError(f"{type(self.seg).__name__}.propagate returned {len(out)} dicts for {len(chunk)} frames")
        last: dict[int, tuple[np.ndarray, float]] = {}
        for fr, masks in zip(chunk[1:], out[1:], strict=True):
            last = {}
            for key, (m, s) in masks.items():
                if key in seeds and self._accept(m, s):
                    self.tracks[key].record(fr, m, s)
                    last[key] = (m, s)
        self.current = last

    def _skip(self, p: Prompt, frame_idx: int | None, reason: str) -> None:
        log.warning("seed on frame %d ignored: %s", p.frame_index, reason)
        if self.on_skipped is not None:
            self.on_skipped(SkippedPrompt(prompt=p, frame_idx=frame_idx, reason=reason))

    def _take_prompts(self, fr: Frame) -> None:
        """Turn the seeds due on `fr` (frame_index <= its index) into masks now, so that a seed yielding no
        mask adds no keyframe and leaves the tracking exactly as if it had not been given."""
        due = [p for p in self.prompts if p.frame_index <= fr.idx]
        self.prompts = [p for p in self.prompts if p.frame_index > fr.idx]
        for p in due:
            m, reason = prompt_mask_or_reason(self.seg, fr.rgb, p, self.cfg.min_area_frac, self.cfg.max_area_frac)
            if m is None:
                self._skip(p, fr.idx, reason)
            else:
                fr.prompts.append((p.object_id, m))

    def _new_track(self, by: str, forced_id: int | None = None) -> Track:
        tr = Track(self.next_key, "prompt" if by == "prompt" else "auto", forced_id=forced_id)
        self.next_key += 1
        self.tracks[tr.key] = tr
        if forced_id is not None:
            self.by_forced[forced_id] = tr.key
        return tr

    def _adopt(self, mask: np.ndarray, forced_id: int | None) -> Track | None:
        """The current track on the object a user seed points at (mask IoU >= iou_match), made the seed's
        track (discovered_by 'prompt', the seed's id when it forces one), so seeding an object that was
        already found does not give it a second id. None when the seed covers no current track."""
        if not self.current:
            return None
        keys = list(self.current)
        iou = mask_iou(mask[None], np.stack([self.current[k][0] for k in keys]))[0]
        best = int(np.argmax(iou))
        if iou[best] < self.cfg.iou_match:
            return None
        tr = self.tracks[keys[best]]
        if forced_id is not None:
            if tr.forced_id is not None:
                self.by_forced.pop(tr.forced_id, None)
            tr.forced_id = forced_id
            self.by_forced[forced_id] = tr.key
        tr.discovered_by = "prompt"
        return tr

    def _apply_prompts(self, fr: Frame, added: dict[int, tuple[int, float]]) -> None:
        for forced_id, m in fr.prompts:
            key = self.by_forced.get(forced_id) if forced_id is not None else None
            tr = self.tracks[key] if key is not None else self._adopt(m, forced_id)
            if tr is None:
                tr = self._new_track("prompt", forced_id)
                # backward extension of a seeded object: only confident frames (see TrackerConfig)
                added[tr.key] = (tr.last_idx, max(self.cfg.min_score, self.cfg.prompt_backward_min_score))
            tr.retired, tr.missing = False, 0
            tr.record(fr, m, 1.0)
            self.current[tr.key] = (m, 1.0)

    def _keyframe(self, fr: Frame, chunk: list[Frame], detections: list[Detection]) -> None:
        added: dict[int, tuple[int, float]] = {}  # track key -> (last idx recorded before, least backward score)
        self._apply_prompts(fr, added)

        props = [d for d in detections if self._accept(d.mask, d.score)]
        props.sort(key=lambda d: (-d.score, -mask_area(d.mask)))
        free = list(range(len(props)))
        if props and self.current:
            keys = list(self.current)
            iou = mask_iou(np.stack([d.mask for d in props]), np.stack([self.current[k][0] for k in keys]))
            matched = hungarian_match(iou, self.cfg.iou_match)
            for r, c in matched:
                self.tracks[keys[c]].vote(props[r].label, props[r].score)
            taken = {r for r, _ in matched}
            for r in free:  # a second detection of a tracked object (another concept's) votes too
                if r not in taken and props[r].label is not None and iou[r].max() >= self.cfg.iou_match:
                    self.tracks[keys[int(iou[r].argmax())]].vote(props[r].label, props[r].score)
                    taken.add(r)
            free = [r for r in free if r not in taken]
        lost = [tr for tr in self.tracks.values() if not tr.retired and tr.key not in self.current]
        lost = [tr for tr in lost if tr.last_mask is not None]
        if free and lost:
            sim = np.stack([self._reid_similarity(tr, fr.idx, [props[r] for r in free]) for tr in lost], axis=1)
            revived = set()
            for r, c in hungarian_match(sim, 1e-6):
                tr = lost[c]
                d = props[free[r]]
                added[tr.key] = (tr.last_idx, self.cfg.min_score)
                tr.missing = 0
                tr.record(fr, d.mask, d.score)
                tr.vote(d.label, d.score)
                self.current[tr.key] = (d.mask, d.score)
                revived.add(free[r])
                log.debug("track %d re-identified on frame %d", tr.key, fr.idx)
            free = [r for r in free if r not in revived]
        covered = np.zeros(self.frame_shape, dtype=bool)
        for m, _ in self.current.values():
            covered |= m
        for r in free:
            d = props[r]
            if uncovered_fraction(d.mask, covered) <= self.cfg.new_object_uncovered:
                continue
            tr = self._new_track("auto")
            added[tr.key] = (-1, self.cfg.min_score)
            tr.record(fr, d.mask, d.score)
            tr.vote(d.label, d.score)
            self.current[tr.key] = (d.mask, d.score)
            covered |= d.mask

        for tr in self.tracks.values():
            if tr.retired:
                continue
            if tr.key in self.current:
                tr.missing = 0
            else:
                tr.missing += 1
                if tr.missing >= self.cfg.max_missing_keyframes:
                    tr.retired, tr.last_mask = True, None  # free its mask: retired tracks never revive
                    log.debug("track %d retired on frame %d", tr.key, fr.idx)

        if self.cfg.backward_pass and added and len(chunk) > 1:
            self._backward(chunk, added)

    def _reid_similarity(self, tr: Track, idx: int, dets: list[Detection]) -> np.ndarray:
        """Similarity in [0, 1] of each detection to a lost track's predicted position (0 = outside the gate).

        Prediction: last centroid + median recent velocity x frames elapsed. Gate radius: `reid_gate` x
        the object's size (sqrt of its largest recent area) + half the predicted travel. Areas must agree
        within a factor of 4; a labelled detection cannot revive a track that carried two or more labelled
        detections, none with its label (a detector's occasional wrong label does not block revival).
        Centroids, not IoU, because a fast small object may not overlap itself.
        """
        vx, vy = tr.velocity()
        gap = idx - tr.last_idx
        _, cx, cy = tr.centroids[tr.last_idx]
        px, py = cx + vx * gap, cy + vy * gap
        recent = [tr.records[k].area for k in sorted(tr.records)[-6:]]
        ref_area = float(max(recent))
        gate = self.cfg.reid_gate * np.sqrt(ref_area) + 0.5 * np.hypot(vx, vy) * gap
        seen = {k: len(v) for k, v in tr.votes.items()}
        out = np.zeros(len(dets))
        for i, d in enumerate(dets):
            if d.label is not None and sum(seen.values()) >= 2 and d.label not in seen:
                continue  # never called this in two or more detections: another kind of object
            a = float(mask_area(d.mask))
            if not 0.25 <= a / ref_area <= 4.0:
                continue
            qx, qy = mask_centroid(d.mask)
            dist = float(np.hypot(qx - px, qy - py))
            if dist < gate:
                out[i] = 1.0 - dist / gate
        return out

    def _backward(self, chunk: list[Frame], added: dict[int, tuple[int, float]]) -> None:
        """Propagate the new/revived tracks from the keyframe back over the chunk's earlier frames."""
        rev = chunk[::-1]
        wanted = {key for key in added if key in self.current}
        if not wanted:
            return
        # Segmenters that share pixels between objects (motion) need every object seeded to split them.
        joint = getattr(self.seg, "joint_propagation", False)
        seeds = {key: m for key, (m, _) in self.current.items() if joint or key in wanted}
        out = propagate_scored(self.seg, [f.rgb for f in rev], seeds)
        for fr, masks in zip(rev[1:], out[1:], strict=True):
            for key, (m, s) in masks.items():
                if key not in wanted:
                    continue
                floor, least = added[key]
                if fr.idx > floor and self._accept(m, s) and s >= least and (least <= 0 or s > 0):
                    self.tracks[key].record(fr, m, s, update_last=False)


def track_video(
    frames: Iterable[tuple[int, float, np.ndarray]],
    segmenter: Segmenter,
    config: TrackerConfig,
    prompts: Sequence[Prompt] = (),
    on_prompt_skipped: PromptSkipped | None = None,
) -> list[ObjectTrack]:
    """Track every salient object through sampled `frames` ((frame_idx, t_seconds, RGB HxWx3 uint8)).

    Recipe, and why:
    - Discovery runs only on keyframes (every `keyframe_every` sampled frames, the first and last frame,
      and frames where a user seed yields a mask): automatic mask generation is the expensive step, and
      objects rarely appear and vanish within a few sampled frames. The keyframes of a window of
      `chunk_size` frames are detected in one batched call when the segmenter batches.
    - Between keyframes the segmenter propagates the current masks over chunks of at most `chunk_size`
      frames (the seed frame + new frames), re-seeded from the last masks of the previous chunk. The
      frames iterator is consumed lazily, so memory is bounded by the chunk whatever the video length;
      SAM 2's memory bank is rebuilt per chunk, which also bounds its growth.
    - On a keyframe, detections are matched to the propagated masks by mask IoU with an optimal one-to-one
      assignment (Hungarian on 1 - IoU, >= `iou_match`). Leftover detections are matched to *lost* tracks
      (absent for fewer than `max_missing_keyframes` keyframes) by distance to their motion-predicted
      position, gated by their size (`reid_gate`) and, for labelled detections, by label, which keeps
      identities through brief occlusions. What is left becomes a new object only if more than
      `new_object_uncovered` of it is outside every tracked mask, so parts of tracked objects do not
      spawn duplicates. Labelled detections vote for their track's label.
    - A track absent on `max_missing_keyframes` consecutive keyframes is retired and never revived.
    - Masks outside [min_area_frac, max_area_frac] of the frame or scored below `min_score` are dropped
      everywhere: fragments, and the whole-frame masks SAM 2 can emit for a lost object.
    - With `backward_pass`, new (and revived) objects are propagated backwards over the chunk that ends
      at their keyframe, so the frames between the previous keyframe and their discovery are kept; for
      objects created by a seed only frames scored >= `prompt_backward_min_score`.
    - Seeds are applied on the first sampled frame at or after their `frame_index`. A seed that yields
      no usable mask (empty, tiny, frame-filling) or whose frame is never reached is reported to
      `on_prompt_skipped` (and logged) and changes nothing else: no keyframe, no id.

    Returns tracks sorted by id, each with at least `min_track_frames` frames, frames sorted by index.
    Ids: a seed's forced id is kept; other objects take 1, 2, ... in order of discovery, skipping the
    forced ids in use (see `tracks`).
    """
    session = _Session(segmenter, config, prompts, on_prompt_skipped)
    for idx, t, rgb in frames:
        session.push(idx, t, rgb)
    return session.finish()


def prefetched_frames(
    path: str, config: TrackerConfig, segmenter: Segmenter | None = None, depth: int = 1,
    info: VideoInfo | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """`(frame_idx, t, rgb)` of `path` at `config.sample_fps`, decoded `config.chunk_size` frames at a time on
    a background thread, up to `depth` chunks ahead; each chunk is also handed to the segmenter's
    `prepare_frames` (when it has one) on that thread, so frames reach the device before they are needed.
    Decoding and upload overlap with tracking; frames alive grow by at most (depth + 1) x chunk_size.
    VideoErrors of the reader are raised here, after the frames that did decode. `info`: the file's probe,
    when the caller has it (a PyAV-backed file's probe decodes it whole)."""
    from pixelrefer_core.video import iter_frame_chunks

    prepare = getattr(segmenter, "prepare_frames", None)

    def work(chunk: list[tuple[int, float, np.ndarray]]) -> None:
        if prepare is not None:
            prepare([rgb for _, _, rgb in chunk])

    with Prefetcher(iter_frame_chunks(path, config.sample_fps, config.chunk_size, info=info), work, depth) as ahead:
        for chunk, _ in ahead:
            yield from chunk


def track_file(
    path: str,
    segmenter: Segmenter,
    config: TrackerConfig,
    prompts: Sequence[Prompt] = (),
    on_prompt_skipped: PromptSkipped | None = None,
    prefetch: bool = False,
) -> list[ObjectTrack]:
    """`track_video` over a video file sampled at `config.sample_fps`, decoded `config.chunk_size` frames at
    a time (on a background thread, ahead of use, with `prefetch`: see `prefetched_frames`)."""
    from pixelrefer_core.video import iter_frames

    frames = prefetched_frames(path, config, segmenter) if prefetch else iter_frames(path, config.sample_fps, config.chunk_size)
    return track_video(frames, segmenter, config, prompts, on_prompt_skipped)
