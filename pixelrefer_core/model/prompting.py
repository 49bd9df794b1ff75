"""Prompt rendering for PixelRefer-Lite, exactly as the official inference builds it (reference §4, §8.8, §9).

A question holds the literal placeholder `<region>` once per object. Each is replaced, in order, by that
object's region string:
- image form (no timestamps): `[<REGION>...<REGION>]` with `mask_num` `<REGION>` tokens;
- video form (timestamps given): `[Time 0.0:<REGION>x32,Time 2.5:<REGION>x32]`, one entry per mask of the
  object, the time written as Python's `round(t, 1)` of the float seconds, no unit.
The chat template has no system prompt:
`<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n`.
`<object0>`, `<object1>` ... are plain text (names the question uses for the objects), not special tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pixelrefer_core.errors import PromptError

from .configuration_pixelrefer import REGION_TOKEN

REGION_PLACEHOLDER = "<region>"
FORBIDDEN_PLACEHOLDERS = ("<image>", "<video>")


def chat_prompt(question: str) -> str:
    """The released chat template around one user turn (no system prompt), ready for the reply."""
    return f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def region_string(mask_num: int, times: Sequence[float] | None = None) -> str:
    """Region string of one object: image form when `times` is None, else one `Time t:` entry per mask."""
    tokens = REGION_TOKEN * mask_num
    if times is None:
        return f"[{tokens}]"
    if len(times) == 0:
        raise PromptError("an object in video form needs at least one timestamp")
    return "[" + ",".join(f"Time {round(float(t), 1)}:{tokens}" for t in times) + "]"


def group_masks_by_object(
    mask_frame_ids: Sequence[int], object_frame_ids: Sequence[Sequence[int]] | None, video: bool
) -> list[list[int]]:
    """Frame positions of each object's masks.

    `object_frame_ids[i]` lists the positions (indices into the frames list) of object i's masks; the masks
    are ordered object by object, so the concatenation must equal `mask_frame_ids`. When it is None: in video
    form all masks belong to one object (one object described over several frames); in image form each mask
    is its own object.
    """
    flat = [int(i) for i in mask_frame_ids]
    if object_frame_ids is None:
        return [flat] if video else [[i] for i in flat]
    groups = [[int(i) for i in g] for g in object_frame_ids]
    if [i for g in groups for i in g] != flat:
        raise PromptError(
            f"object_frame_ids {groups} do not list mask_frame_ids {flat} object by object; "
            "masks must be ordered object by object, then frame by frame"
        )
    if any(len(g) == 0 for g in groups):
        raise PromptError(f"object_frame_ids {groups}: every object needs at least one mask")
    return groups


def render_question(
    question: str,
    mask_frame_ids: Sequence[int],
    mask_num: int,
    object_frame_ids: Sequence[Sequence[int]] | None = None,
    timestamps: Sequence[float] | None = None,
) -> str:
    """The question with each `<region>` replaced by its object's region string (not yet chat-wrapped).

    `timestamps[p]` is the time in seconds of frame position p (video form); None gives the image form.
    Raises PromptError when the number of `<region>` differs from the number of objects, or when the
    question carries `<image>`/`<video>` (Lite prompts have no frame tokens).
    """
    for bad in FORBIDDEN_PLACEHOLDERS:
        if bad in question:
            raise PromptError(
                f"question contains {bad!r}: PixelRefer-Lite prompts carry only <region> placeholders, remove it"
            )
    groups = group_masks_by_object(mask_frame_ids, object_frame_ids, timestamps is not None)
    n_regions = question.count(REGION_PLACEHOLDER)
    if n_regions != len(groups):
        raise PromptError(
            f"question has {n_regions} {REGION_PLACEHOLDER} placeholder(s) but {len(groups)} object(s) were given: "
            f"{question!r}"
        )
    pieces = question.split(REGION_PLACEHOLDER)
    out = [pieces[0]]
    for group, rest in zip(groups, pieces[1:], strict=True):
        if timestamps is not None:
            try:
                times = [timestamps[p] for p in group]
            except IndexError as err:
                raise PromptError(
                    f"frame position in {group} has no timestamp ({len(timestamps)} timestamps given)"
                ) from err
            out.append(region_string(mask_num, times))
        else:
            out.append(region_string(mask_num))
        out.append(rest)
    return "".join(out)


def build_prompt(
    question: str,
    mask_frame_ids: Sequence[int],
    mask_num: int,
    object_frame_ids: Sequence[Sequence[int]] | None = None,
    timestamps: Sequence[float] | None = None,
) -> str:
    """The full text fed to the tokenizer: `chat_prompt(render_question(...))`."""
    return chat_prompt(render_question(question, mask_frame_ids, mask_num, object_frame_ids, timestamps))


_OBJECT_NAME = re.compile(r"<object(\d+)>")


def multi_object_question(question: str, num_objects: int, modality: str = "video") -> str:
    """The official demo's phrasing for questions about several objects (reference §9).

    The user writes `<object0>`, `<object1>` ... in `question`; each object is introduced first with its
    `<region>` placeholder, e.g. for 2 objects:
    `There is 2 objects in the video: <object0><region>, <object1><region>. {question}` (sic, "There is"),
    and for one: `There is 1 object in the video: <object0> <region>. {question}`.
    Raises PromptError when the question names an object index >= num_objects or holds `<region>` itself.
    """
    if num_objects < 1:
        raise PromptError(f"multi_object_question needs at least one object, got {num_objects}")
    if modality not in ("video", "image"):
        raise PromptError(f"modality must be 'video' or 'image', got {modality!r}")
    if REGION_PLACEHOLDER in question:
        raise PromptError(
            f"question already holds {REGION_PLACEHOLDER}; name objects as <object0>, <object1> ..."
        )
    named = {int(m) for m in _OBJECT_NAME.findall(question)}
    if named and max(named) >= num_objects:
        raise PromptError(f"question names <object{max(named)}> but only {num_objects} object(s) were given")
    if num_objects == 1:
        intro = f"There is 1 object in the {modality}: <object0> {REGION_PLACEHOLDER}."
    else:
        objs = ", ".join(f"<object{i}>{REGION_PLACEHOLDER}" for i in range(num_objects))
        intro = f"There is {num_objects} objects in the {modality}: {objs}."
    return f"{intro} {question}"


# Default questions of the official Lite evaluation (reference §9).
DETAILED_VIDEO_CAPTION = (
    "There is one object in the video: <region>.\nPlease describe in detail the marked object in the video."
)
SHORT_VIDEO_CAPTION = (
    "There is one object in the video: <region>.\n"
    "Please give a description of the highlighted object in the video. Using only one sentense."
)
IMAGE_CATEGORY = "What is the category of <region>? Using only one word or phrase."

__all__ = [
    "DETAILED_VIDEO_CAPTION",
    "IMAGE_CATEGORY",
    "REGION_PLACEHOLDER",
    "SHORT_VIDEO_CAPTION",
    "build_prompt",
    "chat_prompt",
    "group_masks_by_object",
    "multi_object_question",
    "region_string",
    "render_question",
]
