"""The records the describe engine takes and gives: `DescribeItem`, `DescribeResult`, `EngineStats`."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from pixelrefer_core.model.object_tokens import EncoderStats

__all__ = ["DescribeItem", "DescribeResult", "EngineStats"]


@dataclass
class DescribeItem:
    """One question about one or several objects. Frames are RGB HxWx3 uint8.

    PixelRefer-Lite: `frames` are the annotated frames (only those carrying masks); `masks` [N, H, W]
    bool/{0,1}, ordered object by object then frame by frame; `mask_frame_ids[i]`: index into `frames` of
    mask i; `question`: one `<region>` per object; `object_frame_ids`: per object, the frame positions of
    its masks (None: in video form one object over all masks, in image form one object per mask);
    `timestamps`: seconds per frame (None = image form, region strings without times).

    PixelRefer (full): `frames` are what the LLM sees: one frame with `timestamps=None` (an image), or a
    video's frames with one timestamp (seconds) each; `mask_frames`: the annotated frames the masks lie on
    (None: the masks lie on `frames`); `masks` [N, H, W] (None for a region-free question), mask i on
    `mask_frames[mask_frame_ids[i]]`, none empty; `question`: one `<region>` per *mask*, optionally one
    `<video>` / `<image>` tag (prepended when absent); `object_frame_ids`: None, or one mask per object.

    `frame_keys`: optional identity per frame of `frames`, e.g. (video_id, frame_idx): a promise that
    frames with equal keys have equal pixels. Lite: items sharing frames encode their global views once.
    Full: items with equal frame_keys, timestamps and question text before the tag share the vision
    tokens and the LLM prefill of the prompt prefix (chat header + video tokens).
    """

    key: Hashable
    frames: list[np.ndarray]
    masks: np.ndarray | None
    mask_frame_ids: list[int]
    question: str
    object_frame_ids: list[list[int]] | None = None
    timestamps: list[float] | None = None
    frame_keys: list[Hashable] | None = None
    mask_frames: list[np.ndarray] | None = None


@dataclass
class DescribeResult:
    """key: the item's key; token_ids: generated ids (eos excluded); text: decoded, special tokens skipped,
    stripped; n_tokens: len(token_ids); latency_ms: wall time of the item's batch divided by its size
    (standard path), or the item's own time from the start of its vision pass to its last token (fast
    path, where items of one vision pass finish at different times)."""

    key: Hashable
    token_ids: list[int]
    text: str
    n_tokens: int
    latency_ms: float


@dataclass
class EngineStats:
    """What one `DescribeEngine.run` did.

    items / batches: described items and engine batches; prefill_tokens: LLM positions prefilled (each
    shared prefix once, plus every item's rest); prefill_tokens_one_at_a_time: what prefilling every
    item's whole prompt would cost (the same for Lite, which shares no prefix); prefixes_prefilled:
    shared prefixes computed; visual_inputs_encoded: images / videos encoded for the full model;
    generated_tokens: new tokens kept; vision: the vision-encoder passes (`EncoderStats`).
    Fast path only: fast_path (the run took it); decode_steps: decode passes over all slots; refills: rows
    that took a slot while other rows were decoding (continuous batching); decode_slots: most slots used;
    cuda_graphs: the decode step ran as a CUDA graph; vision_seconds: wall time building rows (vision
    passes, object tokens, prefix prefills); prefill_seconds / decode_seconds: wall time of the slot
    decoder's prefill passes and decode steps (building rows overlaps them when done on a thread; device
    work is in these times only with `FastPathOptions.timed`).
    """

    items: int = 0
    batches: int = 0
    prefill_tokens: int = 0
    prefill_tokens_one_at_a_time: int = 0
    prefixes_prefilled: int = 0
    visual_inputs_encoded: int = 0
    generated_tokens: int = 0
    vision: EncoderStats = field(default_factory=EncoderStats)
    fast_path: bool = False
    decode_steps: int = 0
    refills: int = 0
    decode_slots: int = 0
    cuda_graphs: bool = False
    vision_seconds: float = 0.0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0

    def add(self, other: EngineStats) -> None:
        """Add another run's (or batch's) counts to these."""
        for name in (
            "items",
            "batches",
            "prefill_tokens",
            "prefill_tokens_one_at_a_time",
            "prefixes_prefilled",
            "visual_inputs_encoded",
            "generated_tokens",
            "decode_steps",
            "refills",
            "vision_seconds",
            "prefill_seconds",
            "decode_seconds",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.decode_slots = max(self.decode_slots, other.decode_slots)
        self.fast_path = self.fast_path or other.fast_path
        self.cuda_graphs = self.cuda_graphs or other.cuda_graphs
        self.vision.timed = self.vision.timed or other.vision.timed
        for name in ("masks", "encoder_calls", "images_encoded", "patches_encoded", "globals_shared",
                     "prepare_seconds", "encode_seconds", "region_seconds"):
            setattr(self.vision, name, getattr(self.vision, name) + getattr(other.vision, name))
        self.vision.flops_per_call.extend(other.vision.flops_per_call)

    @property
    def prefill_saved(self) -> float:
        """Fraction of the one-at-a-time prefill work that prefix reuse saved (0 when nothing was run)."""
        if self.prefill_tokens_one_at_a_time == 0:
            return 0.0
        return 1.0 - self.prefill_tokens / self.prefill_tokens_one_at_a_time
