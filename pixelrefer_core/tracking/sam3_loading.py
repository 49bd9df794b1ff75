"""Loading SAM 3 through transformers: the concept detector, its processor and the video tracker.

Weights come from a hub id (`facebook/sam3`) or a local folder in that format, through `from_pretrained`.
The detector (`Sam3Model`) and the tracker (`Sam3TrackerVideoModel`) are two views of one checkpoint; the
tracker's image backbone is the detector's (transformers maps `detector_model.vision_encoder.backbone.*`
onto it), so after loading both we make them share the one module: half the backbone memory, same
numbers. Transformers' SAM 3 classes need torchvision importable, hence `ensure_torchvision` first.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pixelrefer_core.compat_torchvision import ensure_torchvision
from pixelrefer_core.errors import ModelLoadError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No weight-loading progress bars nor config warnings while the body runs (restored after)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@dataclass
class Sam3Parts:
    """The loaded pieces: detector (Sam3Model), processor (Sam3Processor), tracker (or None)."""

    detector: Any
    processor: Any
    tracker: Any | None
    image_size: int


def load_sam3(ref: str, device: str, with_tracker: bool) -> Sam3Parts:
    """Load SAM 3 from a hub id or a local folder; ModelLoadError naming `ref` when it cannot."""
    ensure_torchvision()
    from transformers import Sam3Model, Sam3Processor, Sam3TrackerVideoModel

    looks_local = ref.startswith(("/", ".", "~")) or os.path.exists(ref)
    if looks_local and not os.path.isdir(os.path.expanduser(ref)):
        raise ModelLoadError(f"SAM 3 checkpoint {ref!r} is not a folder (give a folder in the facebook/sam3 format or a hub id)")
    ref = os.path.expanduser(ref) if looks_local else ref
    try:
        with quiet_transformers():
            detector = Sam3Model.from_pretrained(ref).eval().to(device)
            processor = Sam3Processor.from_pretrained(ref)
            tracker = Sam3TrackerVideoModel.from_pretrained(ref).eval().to(device) if with_tracker else None
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"could not load SAM 3 from {ref!r}: {' '.join(str(exc).split())[:300]}") from exc
    return assemble(detector, processor, tracker)


def assemble(detector: Any, processor: Any, tracker: Any | None) -> Sam3Parts:
    """Sam3Parts from loaded (or freshly built) models; the tracker takes the detector's backbone when the
    weights are the same (always so for checkpoints in the facebook/sam3 layout)."""
    import torch

    if tracker is not None:
        mine, theirs = tracker.vision_encoder.backbone.state_dict(), detector.vision_encoder.backbone.state_dict()
        if mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine):
            tracker.vision_encoder.backbone = detector.vision_encoder.backbone  # the same weights, held once
        else:
            log.info("SAM 3 tracker and detector backbones differ: keeping both")
    size = int(detector.config.vision_config.backbone_config.image_size)
    return Sam3Parts(detector=detector, processor=processor, tracker=tracker, image_size=size)


__all__ = ["Sam3Parts", "assemble", "load_sam3", "quiet_transformers"]
