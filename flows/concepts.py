"""Concepts to find (SAM 3 text prompts): `--concepts "person, car, dog"` or a concepts file.

A concepts file is a YAML or JSON list; an entry is a name, or a name with its own detection threshold:

    - person
    - name: car
      threshold: 0.4        # detections of "car" scoring below 0.4 are dropped (default 0.5)
    - dog

Names are normalised (case and spacing do not matter) and sorted, so the order changes neither results
nor keys. Errors raise `PromptError` naming the file, the line and the reason.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flows.entry_files import load_entries
from pixelrefer_core.errors import PromptError
from pixelrefer_core.tracking.concepts import (
    ConceptSpec,
    normalise_concept,
    parse_concepts,
    validate_concepts,
)

__all__ = ["ConceptSetting", "concept_specs", "load_concepts", "parse_concept_list"]


class ConceptSetting(BaseModel):
    """One concept of a run: `name` and its detection `threshold` in [0, 1] (None: the default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    threshold: float | None = Field(None, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _plain_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not normalise_concept(value):
            raise ValueError("is blank")
        return normalise_concept(value)


def load_concepts(path: str) -> tuple[ConceptSetting, ...]:
    """Read and validate a concepts file (duplicates are named with both lines)."""
    located = load_entries(path, "concepts file", ConceptSetting, PromptError, "name or {name, threshold}")
    first: dict[str, str] = {}
    for at, concept in located:
        if concept.name in first:
            raise PromptError(f"{at}: duplicate concept {concept.name!r} (first at {first[concept.name]})")
        first[concept.name] = at.rsplit(": ", 1)[-1]
    return tuple(sorted((c for _, c in located), key=lambda c: c.name))


def parse_concept_list(text: str) -> tuple[ConceptSetting, ...]:
    """`--concepts "person, car"`: blank or duplicate entries raise PromptError."""
    return tuple(ConceptSetting(name=c.name, threshold=c.threshold) for c in parse_concepts(text))


def concept_specs(concepts: tuple[ConceptSetting, ...]) -> list[ConceptSpec]:
    """The tracker's concept specs (validated again by the tracker's own rules)."""
    return validate_concepts([ConceptSpec(c.name, c.threshold) for c in concepts])
