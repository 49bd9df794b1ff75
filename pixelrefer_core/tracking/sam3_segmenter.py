"""SAM 3 behind the Segmenter protocol: concept detection on keyframes, mask propagation between them.

- Discovery (`discover_labelled[_batch]`): transformers' `Sam3Model` finds every instance of each concept
  on a keyframe. The text of each concept is encoded once; the image encoder runs once per keyframe and
  its features are shared by all concepts (one detector call over keyframe x concept pairs, up to
  `detect_batch` keyframes at a time). A query is kept when sigmoid(its logit) x sigmoid(presence) is
  above its concept's threshold; masks are de-duplicated within a concept (mask IoU > `nms_iou`, at the
  detector's mask resolution; at most `max_detections` per concept and frame, the best), upsampled to the
  frame and cut at `mask_threshold` (a probability).
  Each detection carries its concept as `label`; identities are the tracker's business.
- Propagation (`propagate_scored`): `propagator='sam3'` uses `Sam3TrackerVideoModel` with its typed
  `Sam3TrackerVideoInferenceSession` built over the chunk's in-memory frames, objects seeded with their
  masks on the chunk's first frame, so memory is bounded by the chunk (the image features of a chunk's first
  frame are those the previous chunk computed for its last); `propagator='sam2'` hands
  propagation to our SAM 2 segmenter. A mask is dropped where the object score says "absent" or the mask
  covers more than `whole_frame_frac` of the frame. Score: sigmoid(object score logit).
- `discover='both'`: the automatic masks of SAM 2's generator are added to the concept detections, with
  label None.

Frames are resized to the model's square input (bilinear, antialiased) and normalised with SAM 3's mean
and std (0.5), as its processors do. On CUDA the models run under bf16 autocast (weights stay fp32, as
transformers' port recommends over casting the model).
"""

from __future__ import annotations

import contextlib
import logging
import math
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from pixelrefer_core.errors import ModelLoadError
from pixelrefer_core.tracking.concepts import DEFAULT_CONCEPT_THRESHOLD, ConceptSpec, validate_concepts
from pixelrefer_core.tracking.device_frames import DeviceFrameCache
from pixelrefer_core.tracking.registry import sam3_segmenter_id
from pixelrefer_core.tracking.sam3_loading import Sam3Parts, load_sam3
from pixelrefer_core.tracking.types import Detection

log = logging.getLogger(__name__)

_MEAN = (0.5, 0.5, 0.5)
_STD = (0.5, 0.5, 0.5)


class SAM3Segmenter:
    """Segmenter protocol with SAM 3 (see the module docstring); build it with `build_segmenter('sam3', ...)`."""

    joint_propagation = False

    def __init__(
        self,
        checkpoint: str | None = None,
        device: str = "cpu",
        profile: str | None = None,
        concepts: Iterable[str | ConceptSpec] = (),
        thresholds: Mapping[str, float] | None = None,
        default_threshold: float = DEFAULT_CONCEPT_THRESHOLD,
        propagator: str = "sam3",
        discover: str = "concepts",
        sam2_checkpoint: str | None = None,
        seed: int = 0,
        mask_threshold: float = 0.5,
        nms_iou: float = 0.7,
        whole_frame_frac: float = 0.95,
        max_detections: int = 100,
        detect_batch: int = 4,
        compile: bool = False,
        prefetch: bool = True,
        parts: Sam3Parts | None = None,
    ):
        """`parts`: models already in memory (benchmarks build real-size random ones); else loaded from
        `checkpoint` / the tiny profile."""
        import torch

        self.concepts = validate_concepts(concepts, thresholds, default_threshold)
        self.segmenter_id = sam3_segmenter_id(
            checkpoint, profile, self.concepts, None, default_threshold, propagator, discover, sam2_checkpoint,
            seed, mask_threshold, nms_iou, whole_frame_frac, max_detections,
        )
        if profile not in (None, "tiny"):
            raise ModelLoadError(f"unknown SAM 3 profile {profile!r}: the only profile is 'tiny'")
        if profile == "tiny" and checkpoint is None and parts is None:
            from pixelrefer_core.tracking.sam3_tiny import tiny_sam3_dir

            checkpoint = tiny_sam3_dir(seed)
        if checkpoint is None and parts is None:
            raise ModelLoadError("SAM 3 needs a checkpoint: a hub id such as facebook/sam3, a local folder, or --profile tiny")
        if detect_batch < 1:
            raise ValueError(f"detect_batch must be >= 1, got {detect_batch}")
        if not 0.0 < mask_threshold < 1.0:
            raise ValueError(f"mask_threshold is a probability in (0, 1), got {mask_threshold}")
        self.device = torch.device(device)
        self.thresholds = [c.resolved_threshold(default_threshold) for c in self.concepts]
        self.mask_threshold = float(mask_threshold)
        self.nms_iou = float(nms_iou)
        self.whole_frame_frac = float(whole_frame_frac)
        self.detect_batch = int(detect_batch)
        if max_detections < 1:
            raise ValueError(f"max_detections must be >= 1, got {max_detections}")
        self.max_detections = int(max_detections)
        self.propagator = propagator
        if parts is None:
            assert checkpoint is not None
            parts = load_sam3(checkpoint, str(self.device), with_tracker=propagator == "sam3")
        self.detector, self.processor, self.tracker = parts.detector, parts.processor, parts.tracker
        self.image_size = parts.image_size
        self.frames = DeviceFrameCache(self.image_size, _MEAN, _STD, self.device, capacity=64 if prefetch else 0)
        self.sam2: Any = None
        if propagator == "sam2" or discover == "both":
            from pixelrefer_core.tracking.sam2_segmenter import SAM2Segmenter

            self.sam2 = SAM2Segmenter(
                checkpoint=sam2_checkpoint, device=device, profile="tiny" if profile == "tiny" else None, compile=compile
            )
        self.auto = discover == "both"
        if compile:
            self.detector.vision_encoder.backbone = torch.compile(self.detector.vision_encoder.backbone)
            if self.tracker is not None:
                self.tracker.vision_encoder.backbone = self.detector.vision_encoder.backbone
        self._text = self._encode_concepts()
        # image features of the last propagated frame: the next chunk starts on it
        self._boundary: tuple[weakref.ref[np.ndarray], Any] | None = None

    # -- helpers -----------------------------------------------------------------------------------
    def _autocast(self) -> Any:
        import torch

        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _encode_concepts(self) -> tuple[Any, Any]:
        """(text features [C, L, D], attention mask [C, L]) of every concept, computed once."""
        import torch

        tok = self.processor(text=[c.name for c in self.concepts], return_tensors="pt")
        ids, mask = tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device)
        with torch.inference_mode(), self._autocast():
            feats = self.detector.get_text_features(input_ids=ids, attention_mask=mask).pooler_output
        return feats, mask

    def prepare_frames(self, frames: Sequence[np.ndarray]) -> None:
        """Resize, normalise and move `frames` to the device now (a prefetch thread calls this ahead)."""
        import torch

        with torch.inference_mode():
            self.frames.put(frames)

    # -- discovery -----------------------------------------------------------------------------------
    def discover(self, frame: np.ndarray) -> list[np.ndarray]:
        return [d.mask for d in self.discover_labelled(frame)]

    def discover_labelled(self, frame: np.ndarray) -> list[Detection]:
        return self.discover_labelled_batch([frame])[0]

    def discover_labelled_batch(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Concept detections on each frame (see the module docstring), in one detector call per
        `detect_batch` frames."""
        out: list[list[Detection]] = []
        for start in range(0, len(frames), self.detect_batch):
            out += self._detect(frames[start : start + self.detect_batch])
        if self.auto:
            for dets, f in zip(out, frames, strict=True):
                dets += [Detection(m, s, None) for m, s in self.sam2.discover_scored(f)]
        return out

    def _detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        import torch
        from transformers.modeling_outputs import BaseModelOutputWithPooling
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        n_concepts = len(self.concepts)
        feats, mask = self._text
        with torch.inference_mode(), self._autocast():
            pixels = self.frames.tensor(frames)
            vision = self.detector.get_vision_features(pixel_values=pixels)
            # frame-major pairs: pair i is frame i // C, concept i % C
            pairs = Sam3VisionEncoderOutput(
                fpn_hidden_states=tuple(t.repeat_interleave(n_concepts, 0) for t in vision.fpn_hidden_states),
                fpn_position_encoding=tuple(t.repeat_interleave(n_concepts, 0) for t in vision.fpn_position_encoding),
            )
            res = self.detector(
                vision_embeds=pairs,
                text_embeds=BaseModelOutputWithPooling(pooler_output=feats.repeat(len(frames), 1, 1)),
                attention_mask=mask.repeat(len(frames), 1),
            )
            scores = res.pred_logits.float().sigmoid()
            if res.presence_logits is not None:
                scores = scores * res.presence_logits.float().sigmoid()
            logits = res.pred_masks.float()
            cut = math.log(self.mask_threshold / (1 - self.mask_threshold))  # the probability as a logit
            nonempty = (logits > cut).flatten(2).any(2)  # [pairs, queries]: a query with no mask is no detection
            out: list[list[Detection]] = [[] for _ in frames]
            for i in range(len(frames) * n_concepts):
                f, c = divmod(i, n_concepts)
                keep = torch.nonzero((scores[i] > self.thresholds[c]) & nonempty[i]).flatten()
                if keep.numel() == 0:
                    continue
                keep = keep[torch.argsort(scores[i, keep], descending=True, stable=True)][: self.max_detections]
                keep = self._nms(logits[i, keep] > 0, keep)
                out[f] += self._masks(frames[f], logits[i, keep], scores[i, keep], self.concepts[c].name)
        return out

    def _nms(self, low: Any, order: Any) -> Any:
        """Greedy: drop a query whose low-resolution mask overlaps a better one's by IoU > nms_iou."""
        flat = low.flatten(1).float()
        inter = flat @ flat.T
        area = flat.sum(1)
        over = ((inter / (area[:, None] + area[None, :] - inter).clamp(min=1)) > self.nms_iou).cpu().numpy()
        suppressed = np.zeros(len(over), dtype=bool)  # one copy to the host, then a loop over rows
        kept: list[int] = []
        for j in range(len(over)):
            if not suppressed[j]:
                kept.append(j)
                suppressed |= over[j]
        return order[kept]

    def _masks(self, frame: np.ndarray, logits: Any, scores: Any, label: str) -> list[Detection]:
        import torch.nn.functional as F

        h, w = frame.shape[:2]
        up = F.interpolate(logits[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
        cut = math.log(self.mask_threshold / (1 - self.mask_threshold))  # the probability as a logit
        masks = (up > cut).cpu().numpy()
        return [Detection(m, float(s), label) for m, s in zip(masks, scores.tolist(), strict=True) if m.any()]

    # -- propagation -------------------------------------------------------------------------------
    def propagate(self, frames: Sequence[np.ndarray], seeds: Mapping[int, np.ndarray]) -> list[dict[int, np.ndarray]]:
        return [{k: m for k, (m, _) in d.items()} for d in self.propagate_scored(frames, seeds)]

    def propagate_scored(
        self, frames: Sequence[np.ndarray], seeds: Mapping[int, np.ndarray]
    ) -> list[dict[int, tuple[np.ndarray, float]]]:
        """Per frame {id: (mask, sigmoid(object score))}; frames[0] returns the seeds (score 1)."""
        if self.sam2 is not None and self.propagator == "sam2":
            return self.sam2.propagate_scored(frames, seeds)
        out: list[dict[int, tuple[np.ndarray, float]]] = [{k: (np.asarray(m, bool), 1.0) for k, m in seeds.items()}]
        out += [{} for _ in frames[1:]]
        if not seeds or len(frames) < 2:
            return out
        import torch
        import torch.nn.functional as F
        from transformers.models.sam3_tracker_video.modeling_sam3_tracker_video import (
            Sam3TrackerVideoInferenceSession,
        )

        h, w = frames[0].shape[:2]
        s = self.image_size
        tracker = self.tracker
        assert tracker is not None  # loaded whenever propagator == 'sam3'
        with torch.inference_mode(), self._autocast():
            session = Sam3TrackerVideoInferenceSession(
                video=self.frames.tensor(frames), video_height=h, video_width=w, inference_device=self.device,
                inference_state_device=self.device, video_storage_device=self.device, dtype=torch.float32,
            )
            kept = self._boundary
            if kept is not None and kept[0]() is frames[0]:  # this chunk starts where the last one ended
                session.cache.cache_vision_features(0, kept[1])
            ids = [int(k) for k in seeds]
            for oid in ids:
                m = torch.from_numpy(np.asarray(seeds[oid], dtype=np.float32)).to(self.device)[None, None]
                m = F.interpolate(m, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
                session.add_mask_inputs(session.obj_id_to_idx(oid), 0, (m >= 0.5).float())
            session.obj_with_new_inputs = list(ids)
            tracker(inference_session=session, frame_idx=0)
            for res in tracker.propagate_in_video_iterator(session, start_frame_idx=0):
                fidx = int(res.frame_idx)
                if fidx == 0:
                    continue
                up = F.interpolate(res.pred_masks.float(), size=(h, w), mode="bilinear", align_corners=False)
                masks = (up[:, 0] > 0.0).cpu().numpy()  # thresholded on the device
                logits = res.object_score_logits.float().flatten().tolist()
                for j, oid in enumerate(res.object_ids):
                    m, logit = masks[j], logits[j]
                    area = int(m.sum())
                    if logit <= 0.0 or area == 0 or area > self.whole_frame_frac * h * w:
                        continue
                    out[fidx][int(oid)] = (m, 1.0 / (1.0 + math.exp(-logit)))
            last = session.cache.get_vision_features(len(frames) - 1)
            self._boundary = (weakref.ref(frames[-1]), last) if last is not None else None
        return out

    def prompt_mask(
        self,
        frame: np.ndarray,
        box: Sequence[float] | None = None,
        points: Sequence[Sequence[float]] | None = None,
        labels: Sequence[int] | None = None,
    ) -> np.ndarray | None:
        """User seeds go through SAM 2's image predictor when a SAM 2 model is loaded; else a box becomes
        its rectangle (the tracker's default) and points are refused."""
        if self.sam2 is not None:
            result: np.ndarray | None = self.sam2.prompt_mask(frame, box=box, points=points, labels=labels)
            return result
        from pixelrefer_core.errors import PromptError

        if box is None:
            raise PromptError("the SAM 3 segmenter without a SAM 2 model cannot turn points into a mask; give a box")
        hh, ww = frame.shape[:2]
        mask = np.zeros((hh, ww), dtype=bool)
        x0, y0, x1, y1 = (float(v) for v in box)
        mask[max(0, int(np.floor(y0))) : min(hh, int(np.ceil(y1))), max(0, int(np.floor(x0))) : min(ww, int(np.ceil(x1)))] = True
        return mask


__all__ = ["SAM3Segmenter"]
