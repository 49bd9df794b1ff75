"""SAM 2 propagation with every object of a chunk in one batched predictor call per frame.

Since its Dec-2024 rewrite, `SAM2VideoPredictor.propagate_in_video` runs the memory attention, mask
decoder and memory encoder once per object per frame (objects may be added at any time, so their memory
banks may differ). In our chunks every object is seeded on the chunk's first frame and tracked over the
same frames, so their memory banks have the same layout and can be stacked on the batch dimension, as
the pre-rewrite predictor did: one `_run_single_frame_inference` over N objects per frame instead of N.

Each step is the one `add_new_mask` + `propagate_in_video_preflight` + `propagate_in_video` performs for a
single object (the mask used as output on the conditioning frame, its memory encoded from the
binarised mask, then tracking with memory), run on the stacked batch; masks match the per-object path
(checked in the tests on the tiny model).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def mask_inputs(predictor: Any, masks: Any) -> Any:
    """[N, H, W] bool seed masks -> [N, 1, S, S] float mask inputs, as `add_new_mask` prepares them."""
    import torch.nn.functional as F

    s = predictor.image_size
    m = masks.float()[:, None]
    if m.shape[-2:] != (s, s):
        m = F.interpolate(m, size=(s, s), align_corners=False, mode="bilinear", antialias=True)
        m = (m >= 0.5).float()
    return m


def propagate_batched(predictor: Any, state: dict[str, Any], masks: Any) -> Iterator[tuple[int, Any, Any]]:
    """Seed N objects with `masks` ([N, H, W] bool on the device) on frame 0 of `state` and yield, for each
    later frame, (frame index, video-resolution mask logits [N, 1, H, W], object score logits [N, 1])."""
    import torch.nn.functional as F

    n = int(masks.shape[0])
    s = predictor.image_size
    output_dict: dict[str, dict[int, Any]] = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
    seed_out, _ = predictor._run_single_frame_inference(
        inference_state=state, output_dict=output_dict, frame_idx=0, batch_size=n, is_init_cond_frame=True,
        point_inputs=None, mask_inputs=mask_inputs(predictor, masks), reverse=False, run_mem_encoder=False,
    )
    high = F.interpolate(seed_out["pred_masks"].to(state["device"]), size=(s, s), mode="bilinear", align_corners=False)
    seed_out["maskmem_features"], seed_out["maskmem_pos_enc"] = predictor._run_memory_encoder(
        inference_state=state, frame_idx=0, batch_size=n, high_res_masks=high,
        object_score_logits=seed_out["object_score_logits"], is_mask_from_pts=True,
    )
    output_dict["cond_frame_outputs"][0] = seed_out
    for t in range(1, int(state["num_frames"])):
        out, low = predictor._run_single_frame_inference(
            inference_state=state, output_dict=output_dict, frame_idx=t, batch_size=n, is_init_cond_frame=False,
            point_inputs=None, mask_inputs=None, reverse=False, run_mem_encoder=True,
        )
        output_dict["non_cond_frame_outputs"][t] = out
        _, video_res = predictor._get_orig_video_res_output(state, low)
        yield t, video_res, out["object_score_logits"]


__all__ = ["mask_inputs", "propagate_batched"]
