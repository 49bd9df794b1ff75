"""Named concepts for text-prompted discovery (SAM 3): a typed spec, validation, and the comma-list parser.

A concept is a short noun phrase ("person", "red car"). Names are normalised (whitespace collapsed,
lower case: SAM 3's text encoder is case-insensitive), so "Car" and "car " are the same concept, and
that normalised name is the `label` of the objects found. Each concept has a detection score threshold
in [0, 1] (a detection scoring below it is dropped); unspecified thresholds take the segmenter's default.
Concepts are kept sorted by name: the order a user lists them in changes neither results nor keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pixelrefer_core.errors import PromptError

#: Detection score threshold of a concept without its own (SAM 3's own default for its detector).
DEFAULT_CONCEPT_THRESHOLD = 0.5
MAX_CONCEPT_CHARS = 200


def normalise_concept(text: str) -> str:
    return " ".join(str(text).split()).lower()


@dataclass(frozen=True)
class ConceptSpec:
    """One concept: `name` (normalised) and its detection `threshold` (None: the default)."""

    name: str
    threshold: float | None = None

    def resolved_threshold(self, default: float = DEFAULT_CONCEPT_THRESHOLD) -> float:
        return self.threshold if self.threshold is not None else default

    def canonical(self, default: float = DEFAULT_CONCEPT_THRESHOLD) -> str:
        """`name@threshold`, the form that enters the segmenter id (so the track_key)."""
        return f"{self.name}@{self.resolved_threshold(default):g}"


def _check_threshold(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PromptError(f"{what}: threshold {value!r} is not a number")
    v = float(value)
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise PromptError(f"{what}: threshold {value!r} must be in [0, 1]")
    return v


def validate_concepts(
    concepts: Iterable[str | ConceptSpec],
    thresholds: Mapping[str, float] | None = None,
    default_threshold: float = DEFAULT_CONCEPT_THRESHOLD,
) -> list[ConceptSpec]:
    """Checked, normalised, sorted concept specs. `thresholds` maps concept names to thresholds and
    overrides a spec's own. Raises PromptError naming the entry: no concepts, a blank, overlong or
    duplicate concept, a threshold outside [0, 1], a threshold for a concept that is not listed."""
    _check_threshold(default_threshold, "default concept threshold")
    items = list(concepts)
    if not items:
        raise PromptError("no concepts given: name at least one, e.g. 'person, car'")
    seen: dict[str, int] = {}
    specs: list[ConceptSpec] = []
    for i, item in enumerate(items, 1):
        raw = item.name if isinstance(item, ConceptSpec) else item
        if not isinstance(raw, str):
            raise PromptError(f"concept {i} ({raw!r}): must be text")
        name = normalise_concept(raw)
        if not name:
            raise PromptError(f"concept {i} ({raw!r}): is blank")
        if len(name) > MAX_CONCEPT_CHARS:
            raise PromptError(f"concept {i} ({name[:40]!r}...): longer than {MAX_CONCEPT_CHARS} characters")
        if name in seen:
            raise PromptError(f"concept {i} ({raw!r}): duplicate of concept {seen[name]} ({name!r})")
        seen[name] = i
        threshold = item.threshold if isinstance(item, ConceptSpec) else None
        if threshold is not None:
            threshold = _check_threshold(threshold, f"concept {i} ({name!r})")
        specs.append(ConceptSpec(name, threshold))
    for key, value in (thresholds or {}).items():
        name = normalise_concept(key)
        if name not in seen:
            raise PromptError(f"threshold given for {key!r}, which is not one of the concepts {sorted(seen)}")
        v = _check_threshold(value, f"concept {seen[name]} ({name!r})")
        specs[seen[name] - 1] = ConceptSpec(name, v)
    return sorted(specs, key=lambda c: c.name)


def parse_concepts(text: str) -> list[ConceptSpec]:
    """'person, car, dog' -> validated specs (default thresholds). Empty entries are errors."""
    if not str(text).strip():
        raise PromptError("no concepts given: name at least one, e.g. 'person, car'")
    parts = str(text).split(",")
    for i, part in enumerate(parts, 1):
        if not part.strip():
            raise PromptError(f"concepts {text!r}: entry {i} is empty (concepts are separated by commas)")
    return validate_concepts([p.strip() for p in parts])


__all__ = ["DEFAULT_CONCEPT_THRESHOLD", "ConceptSpec", "normalise_concept", "parse_concepts", "validate_concepts"]
