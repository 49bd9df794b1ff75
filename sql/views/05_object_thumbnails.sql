-- object_thumbnails: one row per tracked object (every tracking), its best frame as JPEG bytes: crop_jpeg
-- (the object's box with some context and its mask outline, crop_w x crop_h pixels; crop_x0..crop_y1 is
-- that crop's box in the full frame) and frame_jpeg (the whole frame at reduced size, frame_w x frame_h).
-- The best frame is the describe stage's: score x sqrt(area). Written by `pixelrefer thumbnails` and by
-- the run's thumbnails phase, one unit per video x track_key. Big (JPEG bytes): read from Parquet at
-- query time, so select the columns you need; join latest_tracks for the latest tracking only.
--   SELECT object_id, frame_idx, octet_length(crop_jpeg) FROM object_thumbnails WHERE video_id = '...'
CREATE OR REPLACE VIEW object_thumbnails AS
SELECT video_id, track_key, object_id, frame_idx, t, crop_x0, crop_y0, crop_x1, crop_y1,
       crop_jpeg, crop_w, crop_h, frame_jpeg, frame_w, frame_h
FROM {source:object_thumbnails};
