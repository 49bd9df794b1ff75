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

import json
import re
from dataclasses import dataclass

import yaml

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
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise PromptError(f"{path}: cannot read prompt file ({exc.strerror or exc})") from exc
    return parse_prompts(text, source=path, fmt="json" if path.lower().endswith(".json") else "yaml")


def parse_prompts(text: str, source: str = "<prompts>", fmt: str = "yaml") -> list[PromptSpec]:
    """Parse prompt-file text. fmt: 'yaml' | 'json'. Raises PromptError with where and why."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PromptError(f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from exc
        lines = [None] * len(data) if isinstance(data, list) else []
        where = [f"entry {i}" for i in range(len(lines))]
    else:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f"line {mark.line + 1}: " if mark is not None else ""
            raise PromptError(f"{source}: {at}invalid YAML: {getattr(exc, 'problem', None) or exc}") from exc
        items = node.value if isinstance(node, yaml.SequenceNode) else []
        where = [f"line {n.start_mark.line + 1} (entry {i})" for i, n in enumerate(items)]
    if not isinstance(data, list) or not data:
        raise PromptError(f"{source}: expected a non-empty list of {{id, task, text}} entries")
    prompts: list[PromptSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(data):
        at = f"{source}: {where[i] if i < len(where) else f'entry {i}'}"
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
