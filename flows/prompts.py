"""Prompt files: parsing, validation, and turning a prompt into the model's question text.

A prompt file is a YAML or JSON list of entries `{id, task: caption|qa, text}`:

    - id: short
      task: caption
      text: "There is one object in the video: <object>.\\nWhat is it? Answer in one sentence."
    - id: together
      task: qa
      text: "What are <object0> and <object1> doing together?"

`<object>` marks a single-object prompt (asked of every tracked object). `<object0>` and `<object1>` mark a
two-object prompt (asked of each pair of objects that appear at the same time in a video). Text with no
placeholder is a single-object prompt about the object introduced in front of it. Errors raise
`PromptError` naming the file, the line (YAML) or position / entry index (JSON), and the reason.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator

from flows.entry_files import load_entries, parse_entries, validate_entries
from pixelrefer_core.errors import PromptError

__all__ = ["DEFAULT_PROMPTS", "PromptSpec", "load_prompts", "parse_prompts", "question_text"]

_MULTI_RE = re.compile(r"<object(\d+)>")
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
REGION = "<region>"  # the official placeholder the describe engine replaces with object tokens
_SHAPE = "{id, task, text}"


class PromptSpec(BaseModel):
    """One validated prompt. `n_objects`: 1 for `<object>` prompts, 2 for `<object0>`/`<object1>` ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    task: Literal["caption", "qa"]
    text: StrictStr = Field(min_length=1)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: object) -> str:
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        if text is None or not _ID_RE.match(text):
            raise ValueError(f"{value!r} must be 1-64 letters, digits, '_', '.' or '-'")
        return text

    @model_validator(mode="after")
    def _placeholders(self) -> PromptSpec:
        text = self.text
        if REGION in text.lower() or "<video>" in text or "<image>" in text:
            raise ValueError("write <object> (or <object0>, <object1>), not <region>/<video>/<image>")
        numbered = sorted({int(n) for n in _MULTI_RE.findall(text)})
        if numbered and "<object>" in text:
            raise ValueError("mixes <object> with numbered <objectN> placeholders")
        if text.count("<object>") > 1:
            raise ValueError("<object> appears more than once; use <object0>, <object1> for two objects")
        if numbered and numbered != [0, 1]:
            raise ValueError(f"numbered placeholders must be exactly <object0> and <object1>, got {numbered}")
        return self

    @property
    def n_objects(self) -> int:
        return 2 if _MULTI_RE.search(self.text) else 1


DEFAULT_PROMPTS: tuple[PromptSpec, ...] = (
    PromptSpec(
        id="caption-short",
        task="caption",
        # Reference §9 (HC-STVG one-sentence caption; "sentense" is the official spelling).
        text="There is one object in the video: <object>.\n"
        "Please give a description of the highlighted object in the video. Using only one sentense.",
    ),
)


def question_text(prompt: PromptSpec) -> str:
    """The question given to the describe engine, with `<region>` where each object's tokens go.

    Single-object: `<object>` -> `<region>` (or the official introduction is prepended when absent).
    Two objects: the official demo's phrasing (`multi_object_question`), `<object0>`/`<object1>` kept as
    plain names in the text.
    """
    if prompt.n_objects == 1:
        if "<object>" in prompt.text:
            return prompt.text.replace("<object>", REGION)
        return f"There is one object in the video: {REGION}.\n{prompt.text}"
    # Imported here: pixelrefer_core.model loads torch and transformers (seconds), which planning and
    # validation of prompt files must not pay for.
    from pixelrefer_core.model.prompting import multi_object_question

    return multi_object_question(prompt.text, prompt.n_objects)


def _unique(located: list[tuple[str, PromptSpec]]) -> list[PromptSpec]:
    seen: set[str] = set()
    for at, prompt in located:
        if prompt.id in seen:
            raise PromptError(f"{at}: duplicate id {prompt.id!r}")
        seen.add(prompt.id)
    return [p for _, p in located]


def load_prompts(path: str) -> list[PromptSpec]:
    """Read and validate a prompt file (.yaml/.yml/.json; other names are tried as YAML)."""
    return _unique(load_entries(path, "prompt file", PromptSpec, PromptError, _SHAPE))


def parse_prompts(text: str, source: str = "<prompts>", fmt: str = "yaml") -> list[PromptSpec]:
    """Parse prompt-file text. fmt: 'yaml' | 'json'. Raises PromptError with where and why."""
    entries = parse_entries(text, source, fmt, PromptError, _SHAPE)
    return _unique(list(zip([at for at, _ in entries], validate_entries(entries, PromptSpec, PromptError),
                            strict=True)))
