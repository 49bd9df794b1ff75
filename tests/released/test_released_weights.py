"""The released checkpoints, as a user with network access runs them: `make test PYTEST_ARGS="--run-slow
tests/released"` (add `-m gpu` on a CUDA machine for the GPU variants). Skipped without --run-slow: no weights
can be downloaded where CI runs."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow

CLIP = "cutie_example.mp4"
LITE_2B = "Alibaba-DAMO-Academy/PixelRefer-Lite-2B"
FULL_2B = "Alibaba-DAMO-Academy/PixelRefer-2B"
SAM2_TINY = "facebook/sam2.1-hiera-tiny"
DEVICE = "cuda" if os.environ.get("PIXELREFER_TEST_DEVICE") == "cuda" else "cpu"


@pytest.fixture(scope="module")
def clip(shared_videos_dir) -> str:
    return os.path.join(shared_videos_dir, CLIP)


@pytest.fixture(scope="module")
def tracks(clip):
    """SAM 2.1 tiny over the first seconds of the sample clip."""
    from pixelrefer_core.tracking import TrackerConfig, build_segmenter, track_file

    segmenter = build_segmenter("sam2", SAM2_TINY, device=DEVICE)
    return track_file(clip, segmenter, TrackerConfig(sample_fps=2.0))


def test_sam2_finds_and_tracks_objects_on_a_sample_clip(tracks):
    assert tracks, "SAM 2.1 found no object on the sample clip"
    longest = max(tracks, key=lambda t: t.frames_present)
    assert longest.frames_present >= 4 and all(f.area > 0 for f in longest.frames)


@pytest.mark.parametrize("model_id", [LITE_2B, FULL_2B])
def test_released_model_loads_strictly_and_captions_a_tracked_object(model_id, clip, tracks):
    from pixelrefer_core.inference import describe_one, select_frames
    from pixelrefer_core.masks import decode_rle
    from pixelrefer_core.model import load_pixelrefer
    from pixelrefer_core.video import read_frames

    model, tokenizer = load_pixelrefer(model_id, device=DEVICE)  # strict: a key mismatch raises ModelLoadError
    track = max(tracks, key=lambda t: t.frames_present)
    chosen = select_frames([f.frame_idx for f in track.frames], [f.score for f in track.frames],
                           [f.area for f in track.frames], k=4)
    records = {f.frame_idx: f for f in track.frames}
    frames, times = read_frames(clip, chosen)
    masks = np.stack([decode_rle(records[i].mask_rle, records[i].mask_h, records[i].mask_w) for i in chosen])
    question = ("There is one object in the video: <region>.\n"
                "Please give a description of the highlighted object in the video. Using only one sentense.")
    if model.config.model_type == "pixelrefer_qwen2":  # full: the LLM sees the frames, one mask per object
        _, text = describe_one(model, tokenizer, frames, masks[:1], [0], question, timestamps=times,
                               mask_frames=frames[:1], max_new_tokens=48)
    else:
        _, text = describe_one(model, tokenizer, frames, masks, list(range(len(chosen))), question,
                               timestamps=times, max_new_tokens=48)
    words = text.split()
    assert len(words) >= 3 and sum(w.isascii() for w in words) >= 0.8 * len(words), text
