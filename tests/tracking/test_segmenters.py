"""Real segmenters end to end: motion on an encoded synthetic video, tiny SAM 2 on a real clip; masks; compat."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pixelrefer_core.masks import box_iou, decode_rle, encode_rle, mask_box, mask_iou
from pixelrefer_core.synthetic import SyntheticObject, render_scene, write_video
from pixelrefer_core.tracking import MotionSegmenter, TrackerConfig, build_segmenter, track_file
from pixelrefer_core.tracking.attributes import motion_stats


def test_masks_roundtrip_box_and_iou():
    m = np.zeros((20, 30), bool)
    m[5:9, 3:13] = True
    assert isinstance(encode_rle(m), str)
    assert np.array_equal(decode_rle(encode_rle(m), 20, 30), m)
    assert mask_box(m) == (3, 5, 13, 9)
    n = np.zeros_like(m)
    n[5:9, 8:18] = True
    assert mask_iou(np.stack([m, n]), m[None])[:, 0] == pytest.approx([1.0, 20 / 60])
    assert box_iou([[3, 5, 13, 9]], [[8, 5, 18, 9]])[0, 0] == pytest.approx(20 / 60)


def test_direction_convention():
    assert motion_stats([0, 1], [(10, 10), (0, 10)])[1] == pytest.approx(180)
    assert motion_stats([0, 1], [(0, 10), (0, 0)])[1] == pytest.approx(90)  # up the image
    assert motion_stats([0, 2], [(0, 0), (0, 10)]) == pytest.approx((5.0, 270))


def test_motion_segmenter_on_encoded_video(tmp_path):
    objects = [
        SyntheticObject("red", "rect", 30, (290, 70), (-6, 0)),
        SyntheticObject("blue", "circle", 30, (30, 170), (5, 0), enter_frame=20),
    ]
    frames, truth = render_scene(objects, 60, seed=5)
    path = tmp_path / "scene.mp4"
    write_video(path, frames, fps=10.0)
    tracks = track_file(path, MotionSegmenter(), TrackerConfig(sample_fps=5.0, keyframe_every=3, chunk_size=6))
    assert len(tracks) == 2
    red, blue = tracks
    assert red.color == "red" and red.direction_deg == pytest.approx(180, abs=10)
    assert red.mean_speed_px_s == pytest.approx(60, rel=0.25)  # 6 px/frame at 10 fps
    assert blue.color == "blue"
    assert min(blue.direction_deg, 360 - blue.direction_deg) < 10  # moving right: near 0 (or just below 360)
    assert blue.first_frame >= 20 and blue.frames_present >= 15
    for tr in tracks:
        assert all(r.frame_idx % 2 == 0 and r.t == pytest.approx(r.frame_idx / 10.0) for r in tr.frames)
        assert len({r.frame_idx for r in tr.frames}) == len(tr.frames)
        for r in tr.frames[::4]:
            m = decode_rle(r.mask_rle, r.mask_h, r.mask_w)
            gt_key = 0 if tr is red else 1
            if gt_key in truth[r.frame_idx]:
                assert mask_iou(m, truth[r.frame_idx][gt_key])[0, 0] > 0.6


def test_torchvision_compat_nms():
    import torch

    from pixelrefer_core.compat_torchvision import ensure_torchvision, nms_reference

    assert ensure_torchvision() in ("native", "fallback")
    import torchvision

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=torch.float32)
    scores = torch.tensor([0.5, 0.9, 0.7, 0.4])
    assert torchvision.ops.nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms_reference(boxes, scores, 0.5).tolist() == [1, 2]
    assert torchvision.ops.batched_nms(boxes, scores, torch.tensor([0, 1, 0, 1]), 0.5).tolist() == [1, 2, 0]


def test_missing_checkpoint_names_path(tmp_path):
    from pixelrefer_core.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="nowhere.pt"):
        build_segmenter("sam2", checkpoint=str(tmp_path / "nowhere.pt"))


def test_segmenter_id_for_matches_the_built_segmenter(tmp_path):
    import torch

    from pixelrefer_core.tracking import segmenter_id_for

    assert segmenter_id_for("motion") == build_segmenter("motion").segmenter_id
    tiny = build_segmenter("sam2", profile="tiny")
    assert segmenter_id_for("sam2", profile="tiny") == tiny.segmenter_id
    amg = {"points_per_side": 2}
    assert segmenter_id_for("sam2", profile="tiny", amg_kwargs=amg, seed=3) == build_segmenter(
        "sam2", profile="tiny", amg_kwargs=amg, seed=3).segmenter_id != tiny.segmenter_id
    ckpt = tmp_path / "sam2.1_hiera_tiny.pt"  # a local checkpoint in the released format
    torch.save({"model": tiny.predictor.state_dict()}, ckpt)
    assert segmenter_id_for("sam2", str(ckpt)) == build_segmenter("sam2", str(ckpt)).segmenter_id
    assert segmenter_id_for("sam2", str(ckpt), compile=False) == segmenter_id_for("sam2", str(ckpt))
    with pytest.raises(ValueError, match="unknown option"):
        segmenter_id_for("sam2", profile="tiny", colour="red")
    with pytest.raises(ValueError, match="unknown segmenter kind"):
        segmenter_id_for("sam9")


def test_tiny_sam2_propagates_a_mask_seed_on_a_real_clip(shared_videos_dir):
    """Random weights: a box seed gives nothing usable, so the seed is a mask, and masks are accepted at any
    size (random propagated masks cover most of the frame). What is checked is the path: our in-memory
    inference state, add_new_mask, propagation, thresholding and the records."""
    from pixelrefer_core.tracking import Prompt, track_video
    from pixelrefer_core.video import iter_frames, probe

    path = os.path.join(shared_videos_dir, "cutie_example.mp4")
    info = probe(path)
    seg = build_segmenter("sam2", profile="tiny", whole_frame_frac=1.0, amg_kwargs={"points_per_side": 1})
    frames = []
    for item in iter_frames(path, target_fps=2.0, chunk_size=3):
        frames.append(item)
        if len(frames) == 3:
            break
    seed = np.zeros((info.height, info.width), bool)
    seed[150:350, 200:400] = True
    cfg = TrackerConfig(sample_fps=2.0, keyframe_every=2, chunk_size=3, min_track_frames=1, max_area_frac=1.0)
    tracks = track_video(iter(frames), seg, cfg, prompts=[Prompt(frame_index=0, mask=seed, object_id=5)])
    seeded = [t for t in tracks if t.object_id == 5]
    assert len(seeded) == 1 and seeded[0].discovered_by == "prompt"
    tr = seeded[0]
    times = {i: t for i, t, _ in frames}
    assert [r.frame_idx for r in tr.frames] == [i for i, _, _ in frames]  # seeded, then propagated twice
    first = decode_rle(tr.frames[0].mask_rle, info.height, info.width)
    assert np.array_equal(first, seed) and tr.frames[0].score == 1.0
    for r in tr.frames[1:]:
        m = decode_rle(r.mask_rle, r.mask_h, r.mask_w)
        assert (r.mask_h, r.mask_w) == (info.height, info.width)
        assert m.any() and r.area == m.sum() and 0.5 < r.score < 1.0  # sigmoid of SAM 2's object score
        assert r.t == pytest.approx(times[r.frame_idx]) and r.t == pytest.approx(r.frame_idx / info.fps, abs=1e-3)
    assert len({t.object_id for t in tracks}) == len(tracks)
