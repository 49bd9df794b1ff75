"""Building segmenters from settings, and their ids without building them.

`segmenter_id_for(kind, checkpoint, profile, **options)` is what `build_segmenter(...)` would give as
`.segmenter_id` (part of the track_key) but imports no model code and loads nothing, so a flow can key
its work before (or without) loading weights. Options that do not change results (device, compile,
prefetch, ...) are not in the id; options that do (concepts, thresholds, propagator, the tiny seed, SAM 2's
mask-generator settings) are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pixelrefer_core.tracking.concepts import DEFAULT_CONCEPT_THRESHOLD, ConceptSpec, validate_concepts
from pixelrefer_core.tracking.motion import MotionSegmenter
from pixelrefer_core.tracking.segmenter import Segmenter

SEGMENTER_KINDS: tuple[str, ...] = ("motion", "sam2", "sam3")
PROPAGATORS: tuple[str, ...] = ("sam3", "sam2")
DISCOVER_MODES: tuple[str, ...] = ("concepts", "both")

# Options of each kind that change results (they enter the id) and those that only change speed.
_SAM2_RESULT_OPTIONS = ("seed", "amg_kwargs", "whole_frame_frac")
_SAM2_SPEED_OPTIONS = ("compile", "prefetch", "batch_objects")
_SAM3_RESULT_OPTIONS = (
    "concepts", "thresholds", "default_threshold", "propagator", "discover", "sam2_checkpoint", "seed",
    "mask_threshold", "nms_iou", "whole_frame_frac", "max_detections",
)
_SAM3_SPEED_OPTIONS = ("compile", "prefetch", "detect_batch")


def _check_options(kind: str, options: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for segmenter {kind!r}; known: {sorted(allowed)}")


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def sam2_segmenter_id(
    checkpoint: str | None, profile: str | None, seed: int = 0, amg_kwargs: Mapping[str, Any] | None = None,
    whole_frame_frac: float = 0.95,
) -> str:
    base = "tiny-random-256" + (f"-seed{seed}" if seed else "") if profile == "tiny" else str(checkpoint)
    extra = []
    if amg_kwargs:
        extra.append(f"amg={_canonical(dict(amg_kwargs))}")
    if whole_frame_frac != 0.95:
        extra.append(f"whole={whole_frame_frac:g}")
    return ":".join(["sam2", base, *extra])


def sam3_segmenter_id(
    checkpoint: str | None,
    profile: str | None,
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
) -> str:
    """Id of a SAM 3 segmenter: weights, propagator, discovery mode, detector settings and every concept
    with its threshold (sorted, so the order concepts are listed in does not matter)."""
    if propagator not in PROPAGATORS:
        raise ValueError(f"unknown propagator {propagator!r}: use one of {PROPAGATORS}")
    if discover not in DISCOVER_MODES:
        raise ValueError(f"unknown discovery mode {discover!r} for sam3: use one of {DISCOVER_MODES}")
    specs = validate_concepts(concepts, thresholds, default_threshold)
    base = "tiny-random" + (f"-seed{seed}" if seed else "") if profile == "tiny" else str(checkpoint)
    parts = ["sam3", base, f"prop={propagator}"]
    if propagator == "sam2" or discover == "both":
        parts.append("sam2=" + ("tiny-random-256" if profile == "tiny" else str(sam2_checkpoint)))
    if discover != "concepts":
        parts.append(f"discover={discover}")
    if (mask_threshold, nms_iou, whole_frame_frac, max_detections) != (0.5, 0.7, 0.95, 100):
        parts.append(f"mask={mask_threshold:g},nms={nms_iou:g},whole={whole_frame_frac:g},max={max_detections}")
    parts.append("concepts=" + ",".join(c.canonical(default_threshold) for c in specs))
    return ":".join(parts)


def segmenter_id_for(kind: str, checkpoint: str | None = None, profile: str | None = None, **options: Any) -> str:
    """The `segmenter_id` `build_segmenter(kind, checkpoint, profile=profile, **options)` would have,
    computed without building anything. Raises ValueError for an unknown kind or option, PromptError
    for bad concepts."""
    if kind == "motion":
        _check_options(kind, options, ())
        return MotionSegmenter.segmenter_id
    if kind == "sam2":
        _check_options(kind, options, _SAM2_RESULT_OPTIONS + _SAM2_SPEED_OPTIONS)
        return sam2_segmenter_id(checkpoint, profile, **{k: v for k, v in options.items() if k in _SAM2_RESULT_OPTIONS})
    if kind == "sam3":
        _check_options(kind, options, _SAM3_RESULT_OPTIONS + _SAM3_SPEED_OPTIONS)
        return sam3_segmenter_id(checkpoint, profile, **{k: v for k, v in options.items() if k in _SAM3_RESULT_OPTIONS})
    raise ValueError(f"unknown segmenter kind {kind!r}: use one of {SEGMENTER_KINDS}")


def build_segmenter(
    kind: str, checkpoint: str | None = None, device: str = "cpu", profile: str | None = None, **options: Any
) -> Segmenter:
    """Make a segmenter. kind 'motion' (weight-free; checkpoint/profile unused), 'sam2' or 'sam3'.

    - 'sam2': `checkpoint` an HF id (facebook/sam2.1-hiera-tiny|small|base-plus|large) or a local .pt;
      `profile='tiny'` builds a randomly initialised 256 px Hiera-T (offline tests and demos). Options:
      compile (compiled image encoder), prefetch (frames moved to the device ahead of use), batch_objects
      (all objects of a chunk in one batched call), amg_kwargs, whole_frame_frac, seed (tiny weights).
    - 'sam3': `checkpoint` an HF id (facebook/sam3) or a local folder in its format; `profile='tiny'`
      a small random SAM 3 saved in that format. Options: concepts (required: names or ConceptSpecs),
      thresholds ({concept: score}), default_threshold, propagator ('sam3' | 'sam2'), discover
      ('concepts' | 'both': automatic SAM 2 masks too, unlabelled), sam2_checkpoint (for propagator
      'sam2' / discover 'both' with real weights), mask_threshold, nms_iou, whole_frame_frac,
      max_detections (per concept and frame), detect_batch (keyframes per detector call), compile, prefetch, seed (tiny weights).
    """
    if kind == "motion":
        _check_options(kind, options, ())
        return MotionSegmenter()
    if kind == "sam2":
        _check_options(kind, options, _SAM2_RESULT_OPTIONS + _SAM2_SPEED_OPTIONS)
        from pixelrefer_core.tracking.sam2_segmenter import SAM2Segmenter

        return SAM2Segmenter(checkpoint=checkpoint, device=device, profile=profile, **options)
    if kind == "sam3":
        _check_options(kind, options, _SAM3_RESULT_OPTIONS + _SAM3_SPEED_OPTIONS)
        from pixelrefer_core.tracking.sam3_segmenter import SAM3Segmenter

        return SAM3Segmenter(checkpoint=checkpoint, device=device, profile=profile, **options)
    raise ValueError(f"unknown segmenter kind {kind!r}: use one of {SEGMENTER_KINDS}")


__all__ = [
    "DISCOVER_MODES",
    "PROPAGATORS",
    "SEGMENTER_KINDS",
    "build_segmenter",
    "sam2_segmenter_id",
    "sam3_segmenter_id",
    "segmenter_id_for",
]
