"""Content-derived unit-of-work keys (DESIGN.md "Data contracts"): a re-run computes the same keys.

track_key    = hash(tracker config as_dict, segmenter_id, TRACKER_VERSION)
describe_key = hash(track_key, prompt text, task, model id + revision, generation params,
                    frame-selection params, ENGINE_VERSION)

Keys are the first 16 hex digits of a sha256 over canonical JSON (sorted keys, no whitespace), prefixed
with the unit kind so a key is recognisable in file names ("t-..." / "d-...").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["describe_key", "stable_hash", "track_key"]


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 2.0 and 2 give the same key
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def stable_hash(value: Any, length: int = 16) -> str:
    """Hex sha256 of the canonical JSON of `value` (dicts by sorted key), cut to `length` digits."""
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def track_key(tracker_config: Mapping[str, Any], segmenter_id: str, tracker_version: str) -> str:
    """Key of one tracking of a video: same config + segmenter + tracker code -> same key."""
    return "t-" + stable_hash(
        {"config": dict(tracker_config), "segmenter": segmenter_id, "version": tracker_version}
    )


def describe_key(
    track_key: str,
    prompt_text: str,
    task: str,
    model_id: str,
    generation: Mapping[str, Any],
    frame_selection: Mapping[str, Any],
    engine_version: str,
) -> str:
    """Key of one describe unit (one video's objects x one prompt x one model/generation setting)."""
    return "d-" + stable_hash(
        {
            "track_key": track_key,
            "prompt": prompt_text,
            "task": task,
            "model": model_id,
            "generation": dict(generation),
            "frames": dict(frame_selection),
            "version": engine_version,
        }
    )
