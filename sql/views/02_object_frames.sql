-- object_frames: the timeline, one row per (object, frame) for every tracking of every video.
-- Boxes are pixels x0, y0, x1, y1 (x1/y1 exclusive); mask_rle is COCO compressed RLE counts.
CREATE OR REPLACE VIEW object_frames AS
SELECT video_id, track_key, object_id, frame_idx, t, x0, y0, x1, y1, area, score,
       mask_rle, mask_h, mask_w
FROM {source:object_frames};
