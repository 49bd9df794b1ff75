"""SAM 2 behind the Segmenter protocol: automatic discovery + chunked video propagation.

Frames come from our own decoder (`pixelrefer_core.video`), never from `init_state(video_path)` (which
preloads the whole file as float32 at 1024 px). `propagate` builds the predictor's inference state from
the chunk's in-memory frames exactly as `SAM2VideoPredictor.init_state` does (same keys), with frames
resized to the model's square input size (bilinear, antialiased; decord's loader uses FFmpeg scaling)
and normalised with the ImageNet mean/std the loader uses. Objects are seeded with their masks on the
chunk's first frame, so memory is bounded by the chunk length. Mask logits are thresholded on the device
before moving to the CPU; an object is dropped on a frame where its object score says "absent" or its
mask covers nearly the whole frame.

For speed (all verified on CPU to give the same masks): `batch_objects` propagates every object of a
chunk in one batched predictor call per frame (`sam2_batched`) instead of one call per object;
`prepare_frames` (called ahead by a prefetch thread, see `tracker.prefetched_frames`) resizes and moves
frames to the device before they are needed; a chunk that starts on the frame the previous one ended on
(always so in the tracker) reuses that frame's image features; on CUDA the model runs under bf16 autocast, and `compile`
compiles the image encoder (`torch.compile`, as SAM 2's own `compile_image_encoder` does).

Checkpoints: an HF id in `HF_MODELS` (downloaded with huggingface_hub), a local .pt path, or
`profile='tiny'`: a randomly initialised Hiera-T at 256 px, seeded (deterministic), for offline tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pixelrefer_core.compat_torchvision import ensure_torchvision
from pixelrefer_core.errors import ModelLoadError
from pixelrefer_core.tracking.device_frames import DeviceFrameCache
from pixelrefer_core.tracking.registry import sam2_segmenter_id
from pixelrefer_core.tracking.sam2_batched import propagate_batched

log = logging.getLogger(__name__)

#: HF id -> (hydra config name, checkpoint file name in the repo)
HF_MODELS: dict[str, tuple[str, str]] = {
    "facebook/sam2.1-hiera-tiny": ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt"),
    "facebook/sam2.1-hiera-small": ("configs/sam2.1/sam2.1_hiera_s.yaml", "sam2.1_hiera_small.pt"),
    "facebook/sam2.1-hiera-base-plus": ("configs/sam2.1/sam2.1_hiera_b+.yaml", "sam2.1_hiera_base_plus.pt"),
    "facebook/sam2.1-hiera-large": ("configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_large.pt"),
}
_FILE_HINTS = (("tiny", "t"), ("small", "s"), ("base_plus", "b+"), ("base-plus", "b+"), ("large", "l"))
TINY_OVERRIDES = [
    "++model.image_size=256",
    "++model.memory_attention.layer.self_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[16,16]",
]
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """`propagate_in_video` wraps its loop in tqdm unconditionally: hide that bar while it runs."""
    import sam2.sam2_video_predictor as vp

    bar = vp.tqdm
    vp.tqdm = lambda it, **_: it
    try:
        yield
    finally:
        vp.tqdm = bar


def _has_cuda_ext() -> bool:
    try:
        from sam2 import _C  # noqa: F401

        return True
    except ImportError:
        return False


def resolve_checkpoint(checkpoint: str | None, profile: str | None) -> tuple[str, str | None, list[str]]:
    """(config name, local checkpoint path or None, hydra overrides) for a checkpoint spec."""
    if profile == "tiny":
        return HF_MODELS["facebook/sam2.1-hiera-tiny"][0], None, list(TINY_OVERRIDES)
    if profile is not None:
        raise ModelLoadError(f"unknown SAM 2 profile {profile!r}: the only profile is 'tiny'")
    if checkpoint is None:
        raise ModelLoadError("SAM 2 needs a checkpoint (an HF id such as facebook/sam2.1-hiera-tiny or a .pt path)")
    if checkpoint in HF_MODELS:
        config, filename = HF_MODELS[checkpoint]
        try:
            from huggingface_hub import hf_hub_download

            return config, hf_hub_download(repo_id=checkpoint, filename=filename), []
        except Exception as exc:  # noqa: BLE001 - any hub failure is a load failure for the user
            raise ModelLoadError(f"could not download {filename} from {checkpoint}: {exc}") from exc
    if not os.path.isfile(checkpoint):
        known = ", ".join(HF_MODELS)
        raise ModelLoadError(f"SAM 2 checkpoint {checkpoint!r} is not a file nor a known HF id ({known})")
    name = os.path.basename(checkpoint).lower()
    for hint, size in _FILE_HINTS:
        if hint in name:
            return f"configs/sam2.1/sam2.1_hiera_{size}.yaml", checkpoint, []
    raise ModelLoadError(f"cannot tell the model size of {checkpoint!r}: name it like sam2.1_hiera_<tiny|small|base_plus|large>.pt")


class SAM2Segmenter:
    """Segmenter protocol with SAM 2. `discover` = SAM2AutomaticMaskGenerator; `propagate` = video predictor.

    `amg_kwargs` override the mask generator's settings (points_per_side, pred_iou_thresh, ...);
    `whole_frame_frac`: masks covering more of the frame are treated as "object lost".
    """

    def __init__(
        self,
        checkpoint: str | None = None,
        device: str = "cpu",
        profile: str | None = None,
        compile: bool = False,
        seed: int = 0,
        amg_kwargs: dict[str, Any] | None = None,
        whole_frame_frac: float = 0.95,
        batch_objects: bool = True,
        prefetch: bool = True,
    ):
        import torch

        ensure_torchvision()
        from sam2.build_sam import build_sam2_video_predictor

        config, ckpt_path, overrides = resolve_checkpoint(checkpoint, profile)
        self.device = torch.device(device)
        self.segmenter_id = sam2_segmenter_id(checkpoint, profile, seed, amg_kwargs, whole_frame_frac)
        self.whole_frame_frac = whole_frame_frac
        torch.manual_seed(seed)
        try:
            self.predictor = build_sam2_video_predictor(
                config,
                ckpt_path=ckpt_path,
                device=str(self.device),
                hydra_overrides_extra=overrides,
                apply_postprocessing=_has_cuda_ext(),
            )
        except (RuntimeError, KeyError, OSError) as exc:
            raise ModelLoadError(f"SAM 2 {config} with checkpoint {ckpt_path}: {exc}") from exc
        self.image_size = int(self.predictor.image_size)
        self.batch_objects = batch_objects
        self._boundary: tuple[weakref.ref[np.ndarray], Any] | None = None
        self.frames = DeviceFrameCache(self.image_size, _MEAN, _STD, self.device, capacity=64 if prefetch else 0)
        if compile:  # the image encoder dominates; compile its forward only (checkpoints still load)
            enc = self.predictor.image_encoder
            enc.forward = torch.compile(enc.forward, mode="max-autotune", fullgraph=True, dynamic=False)
        defaults = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0} if profile == "tiny" else {}
        self._amg_kwargs = {**defaults, **(amg_kwargs or {})}
        self._amg: Any = None

    # -- helpers -----------------------------------------------------------------------------------
    def _autocast(self) -> Any:
        import torch

        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def amg(self) -> Any:
        if self._amg is None:
            from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

            self._amg = SAM2AutomaticMaskGenerator(self.predictor, output_mode="binary_mask", **self._amg_kwargs)
            # The image predictor hard-codes the 1024 px feature sizes; follow the model's input size.
            s = self.image_size
            self._amg.predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
        return self._amg

    def prepare_frames(self, frames: Sequence[np.ndarray]) -> None:
        """Resize, normalise and move `frames` to the device now (a prefetch thread calls this ahead)."""
        import torch

        with torch.inference_mode():
            self.frames.put(frames)

    def _init_state(self, frames: Sequence[np.ndarray]) -> dict:
        """The dict `SAM2VideoPredictor.init_state` builds, from in-memory frames (frame 0's image features
        computed, or taken from the previous chunk when it ended on this frame)."""
        h, w = frames[0].shape[:2]
        state: dict = {
            "images": self.frames.tensor(frames),
            "num_frames": len(frames),
            "offload_video_to_cpu": False,
            "offload_state_to_cpu": False,
            "video_height": h,
            "video_width": w,
            "device": self.device,
            "storage_device": self.device,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": OrderedDict(),
            "obj_idx_to_id": OrderedDict(),
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }
        kept = self._boundary
        if kept is not None and kept[0]() is frames[0]:
            state["cached_features"] = {0: kept[1]}  # this chunk starts where the last one ended
        else:
            self.predictor._get_image_feature(state, frame_idx=0, batch_size=1)
        return state

    def _keep_boundary(self, state: dict, frames: Sequence[np.ndarray]) -> None:
        """Remember the image features of the chunk's last frame: the next chunk (or the backward pass
        from this keyframe) starts on that very frame, and need not encode it again."""
        last = len(frames) - 1
        cached = state["cached_features"].get(last)
        self._boundary = (weakref.ref(frames[last]), cached) if cached is not None else None

    # -- Segmenter protocol ------------------------------------------------------------------------
    def discover(self, frame: np.ndarray) -> list[np.ndarray]:
        return [m for m, _ in self.discover_scored(frame)]

    def discover_scored(self, frame: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Masks of the automatic mask generator with their predicted IoU (clipped to [0, 1])."""
        import torch

        with torch.inference_mode(), self._autocast():
            anns = self.amg.generate(np.ascontiguousarray(frame))
        return [(np.asarray(a["segmentation"], dtype=bool), float(np.clip(a["predicted_iou"], 0, 1))) for a in anns]

    def propagate(self, frames: Sequence[np.ndarray], seeds: Mapping[int, np.ndarray]) -> list[dict[int, np.ndarray]]:
        return [{k: m for k, (m, _) in d.items()} for d in self.propagate_scored(frames, seeds)]

    def propagate_scored(
        self, frames: Sequence[np.ndarray], seeds: Mapping[int, np.ndarray]
    ) -> list[dict[int, tuple[np.ndarray, float]]]:
        """Per frame {id: (mask, sigmoid(object score))}; frames[0] returns the seeds (score 1)."""
        import torch

        out: list[dict[int, tuple[np.ndarray, float]]] = [{k: (np.asarray(m, bool), 1.0) for k, m in seeds.items()}]
        out += [{} for _ in frames[1:]]
        if not seeds or len(frames) < 2:
            return out
        h, w = frames[0].shape[:2]
        ids = [int(k) for k in seeds]
        with torch.inference_mode(), self._autocast():
            state = self._init_state(frames)
            for fidx, logits, scores in self._propagation(state, ids, [np.asarray(seeds[k], dtype=bool) for k in ids]):
                masks = (logits[:, 0] > 0.0).to("cpu").numpy()  # thresholded on the device
                obj_logits = scores.float().flatten().tolist()
                for j, oid in enumerate(ids):
                    m, obj_logit = masks[j], obj_logits[j]
                    area = int(m.sum())
                    if obj_logit <= 0.0 or area == 0 or area > self.whole_frame_frac * h * w:
                        continue
                    out[fidx][oid] = (m, float(1.0 / (1.0 + np.exp(-obj_logit))))
            self._keep_boundary(state, frames)
        return out

    def _propagation(self, state: dict[str, Any], ids: list[int], seeds: list[np.ndarray]) -> Iterator[tuple[int, Any, Any]]:
        """(frame index >= 1, mask logits [N, 1, H, W], object score logits [N, 1]) for the seeded objects,
        batched (one predictor call per frame) or object by object through the predictor's own API."""
        import torch

        if self.batch_objects:
            masks = torch.from_numpy(np.stack(seeds)).to(self.device)
            yield from propagate_batched(self.predictor, state, masks)
            return
        for oid, m in zip(ids, seeds, strict=True):
            self.predictor.add_new_mask(state, 0, oid, torch.from_numpy(m))
        with _no_progress_bar():
            for fidx, _, logits in self.predictor.propagate_in_video(state, start_frame_idx=0):
                if fidx == 0:
                    continue
                per_obj = state["output_dict_per_obj"]
                scores = torch.cat([per_obj[i]["non_cond_frame_outputs"][fidx]["object_score_logits"] for i in range(len(ids))])
                yield fidx, logits, scores

    def prompt_mask(
        self,
        frame: np.ndarray,
        box: Sequence[float] | None = None,
        points: Sequence[Sequence[float]] | None = None,
        labels: Sequence[int] | None = None,
    ) -> np.ndarray | None:
        """Mask for a box and/or points ((x, y) pixels, labels 1 object / 0 background) on `frame`."""
        import torch

        pred = self.amg.predictor
        coords = np.asarray(points, dtype=np.float32) if points else None
        labs = np.asarray(labels if labels is not None else [1] * len(points), dtype=np.int32) if points else None
        with torch.inference_mode(), self._autocast():
            pred.set_image(np.ascontiguousarray(frame))
            masks, _, _ = pred.predict(
                point_coords=coords, point_labels=labs,
                box=None if box is None else np.asarray(box, dtype=np.float32), multimask_output=False,
            )
        m = np.asarray(masks[0]) > 0
        return m if m.any() else None
