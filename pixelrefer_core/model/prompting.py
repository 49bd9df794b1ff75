"""Prompt rendering of both variants, exactly as the official inference builds it.

PixelRefer-Lite (Lite reference §4, §8.8, §9). A question holds the literal placeholder `<region>` once
per object. Each is replaced, in order, by that object's region string:
- image form (no timestamps): `[<REGION>...<REGION>]` with `mask_num` `<REGION>` tokens;
- video form (timestamps given): `[Time 0.0:<REGION>x32,Time 2.5:<REGION>x32]`, one entry per mask of the
  object, the time written as Python's `round(t, 1)` of the float seconds, no unit.
The chat template has no system prompt:
`<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n`.
`<object0>`, `<object1>` ... are plain text (names the question uses for the objects), not special tokens.

PixelRefer (full reference §5). One `<region>` per *mask*, each replaced by `[` + `<REGION>` x n_i + `]`
(n_i = the mask's 0..32 tokens; `[]` for 0), no timestamps in region strings. The question holds at most
one modal tag (`<image>` for an image, `<video>` for a video; prepended when absent); the text is split
there, each side stripped, and the user turn is: text before + visual block + `\n` + text after, where the
visual block is `<image>` x (gh*gw) for an image and, for a video, `Time {t}s:` + `<image>` x (gh*gw/4)
per frame joined by `,`. `{t}` is `str(round(t, 1))` of the timestamp as the official video loader's
np.float64 gives it (numpy rounding: 0.15 -> 0.2, 0.45 -> 0.4) or, with rounding="python", of a Python
float (0.15 -> 0.1, 0.45 -> 0.5).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

from pixelrefer_core.errors import PromptError

from .configuration_pixelrefer import IMAGE_TOKEN, REGION_TOKEN

logger = logging.getLogger(__name__)

REGION_PLACEHOLDER = "<region>"
IMAGE_TAG = "<image>"
VIDEO_TAG = "<video>"
FORBIDDEN_PLACEHOLDERS = (IMAGE_TAG, VIDEO_TAG)


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


# ---- PixelRefer (full) ---------------------------------------------------------------------------------
def format_timestamp(t: float, rounding: str = "numpy") -> str:
    """`t` as the official template writes it before `s`: `str(round(t, 1))` of np.float64(t) or float(t)."""
    if rounding == "numpy":
        return str(round(np.float64(t), 1))
    if rounding == "python":
        return str(round(float(t), 1))
    raise ValueError(f"rounding must be 'numpy' or 'python', got {rounding!r}")


def render_mask_regions(question: str, tokens_per_mask: Sequence[int]) -> str:
    """Each `<region>` replaced, in order, by `[<REGION> x n_i]` (full model: one placeholder per mask).

    Raises PromptError when the number of `<region>` differs from the number of masks.
    """
    n_regions = question.count(REGION_PLACEHOLDER)
    if n_regions != len(tokens_per_mask):
        raise PromptError(
            f"question has {n_regions} {REGION_PLACEHOLDER} placeholder(s) but {len(tokens_per_mask)} mask(s) "
            f"were given (the full PixelRefer takes one {REGION_PLACEHOLDER} per mask): {question!r}"
        )
    pieces = question.split(REGION_PLACEHOLDER)
    out = [pieces[0]]
    for n, rest in zip(tokens_per_mask, pieces[1:], strict=True):
        out.append("[" + REGION_TOKEN * int(n) + "]")
        out.append(rest)
    return "".join(out)


def split_at_modal_tag(question: str, video: bool) -> tuple[str, str]:
    """(text before, text after) the question's `<image>` (image) or `<video>` (video) tag, each stripped.

    No tag: the tag is taken as prepended (all text after it). Raises PromptError for more than one tag or
    for the other modality's tag.
    """
    tag, other = (VIDEO_TAG, IMAGE_TAG) if video else (IMAGE_TAG, VIDEO_TAG)
    if other in question:
        kind = "a video" if video else "an image"
        raise PromptError(
            f"question holds {other!r} but the input is {kind} (use {tag!r} or no tag): {question!r}"
        )
    count = question.count(tag)
    if count > 1:
        raise PromptError(f"question holds {count} {tag!r} tags; give at most one: {question!r}")
    if count == 0:
        logger.debug("no %s tag in the question; prepending one, as the official code does", tag)
        return "", question.strip()
    before, after = question.split(tag)
    return before.strip(), after.strip()


def visual_prompt(tokens_per_frame: int, timestamps: Sequence[float] | None, rounding: str = "numpy") -> str:
    """The visual block: `<image>` x n (image, timestamps None) or `Time {t}s:<image> x n` per frame, `,`-joined."""
    if timestamps is None:
        return IMAGE_TOKEN * tokens_per_frame
    if len(timestamps) == 0:
        raise PromptError("a video needs at least one frame timestamp")
    return ",".join(
        f"Time {format_timestamp(t, rounding)}s:" + IMAGE_TOKEN * tokens_per_frame for t in timestamps
    )


def build_full_prompt(
    question: str,
    tokens_per_mask: Sequence[int],
    tokens_per_frame: int,
    timestamps: Sequence[float] | None = None,
    rounding: str = "numpy",
) -> str:
    """The full model's text before compression: chat turn with the visual block and the region strings."""
    text = render_mask_regions(question, tokens_per_mask)
    before, after = split_at_modal_tag(text, video=timestamps is not None)
    return chat_prompt(before + visual_prompt(tokens_per_frame, timestamps, rounding) + "\n" + after)


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
    "IMAGE_TAG",
    "REGION_PLACEHOLDER",
    "SHORT_VIDEO_CAPTION",
    "VIDEO_TAG",
    "build_full_prompt",
    "build_prompt",
    "chat_prompt",
    "format_timestamp",
    "group_masks_by_object",
    "multi_object_question",
    "region_string",
    "render_mask_regions",
    "render_question",
    "split_at_modal_tag",
    "visual_prompt",
]
