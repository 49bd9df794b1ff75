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
from dataclasses import dataclass

from flows.entry_files import parse_entries, read_entry_file
from pixelrefer_core.errors import PromptError

__all__ = ["DEFAULT_PROMPTS", "PromptSpec", "load_prompts", "parse_prompts", "question_text"]

TASKS = ("caption", "qa")
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MULTI_RE = re.compile(r"<object(\d+)>")
REGION = "<region>"  # the official placeholder the describe engine replaces with object tokens


@dataclass(frozen=True)
class PromptSpec:
    """One validated prompt. n_objects: 1 for `<object>` prompts, 2 for `<object0>`/`<object1>` prompts."""

    id: str
    task: str
    text: str
    n_objects: int = 1


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
    Two objects: reference §9's demo form, `There is 2 objects in the video: <object0><region>,
    <object1><region>. {text}`, with `<object0>`/`<object1>` left in the text as plain names.
    """
    if prompt.n_objects == 1:
        if "<object>" in prompt.text:
            return prompt.text.replace("<object>", REGION)
        return f"There is one object in the video: {REGION}.\n{prompt.text}"
    intro = ", ".join(f"<object{i}>{REGION}" for i in range(prompt.n_objects))
    return f"There is {prompt.n_objects} objects in the video: {intro}. {prompt.text}"


def load_prompts(path: str) -> list[PromptSpec]:
    """Read and validate a prompt file (.yaml/.yml/.json; other names are tried as YAML)."""
    return _validated(read_entry_file(path, "prompt file", PromptError, "{id, task, text}"))


def parse_prompts(text: str, source: str = "<prompts>", fmt: str = "yaml") -> list[PromptSpec]:
    """Parse prompt-file text. fmt: 'yaml' | 'json'. Raises PromptError with where and why."""
    return _validated(parse_entries(text, source, fmt, PromptError, "{id, task, text}"))


def _validated(entries: list[tuple[str, object]]) -> list[PromptSpec]:
    prompts: list[PromptSpec] = []
    seen: set[str] = set()
    for at, entry in entries:
        prompt = _validate_entry(entry, at)
        if prompt.id in seen:
            raise PromptError(f"{at}: duplicate id {prompt.id!r}")
        seen.add(prompt.id)
        prompts.append(prompt)
    return prompts


def _validate_entry(entry: object, at: str) -> PromptSpec:
    if not isinstance(entry, dict):
        raise PromptError(f"{at}: expected a mapping with id, task, text; got {type(entry).__name__}")
    unknown = set(entry) - {"id", "task", "text"}
    if unknown:
        raise PromptError(f"{at}: unknown field(s) {sorted(unknown)}; allowed: id, task, text")
    for name in ("id", "task", "text"):
        if name not in entry or entry[name] in (None, ""):
            raise PromptError(f"{at}: missing {name!r}")
    pid, task, text = str(entry["id"]), entry["task"], entry["text"]
    if not _ID_RE.match(pid):
        raise PromptError(f"{at}: id {pid!r} must be 1-64 letters, digits, '_', '.' or '-'")
    if task not in TASKS:
        raise PromptError(f"{at}: task {task!r} is not one of {list(TASKS)}")
    if not isinstance(text, str):
        raise PromptError(f"{at}: text must be a string")
    if REGION in text.lower() or "<video>" in text or "<image>" in text:
        raise PromptError(f"{at}: write <object> (or <object0>, <object1>), not <region>/<video>/<image>")
    numbered = sorted({int(n) for n in _MULTI_RE.findall(text)})
    if numbered and "<object>" in text:
        raise PromptError(f"{at}: mixes <object> with numbered <objectN> placeholders")
    if text.count("<object>") > 1:
        raise PromptError(f"{at}: <object> appears more than once; use <object0>, <object1> for two objects")
    if numbered:
        if numbered != [0, 1]:
            raise PromptError(f"{at}: numbered placeholders must be exactly <object0> and <object1>, got {numbered}")
        return PromptSpec(id=pid, task=task, text=text, n_objects=2)
    return PromptSpec(id=pid, task=task, text=text, n_objects=1)
