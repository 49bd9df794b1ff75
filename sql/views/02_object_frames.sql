-- object_frames: the timeline, one row per (object, frame) for every tracking of every video.
-- Boxes are pixels x0, y0, x1, y1 (x1/y1 exclusive); mask_rle is COCO compressed RLE counts.
-- The big table: read from Parquet at query time (<root>/object_frames/video_id=*/*.parquet, a path
-- relative to the store root). A filter on video_id prunes other videos' files, but the folder listing
-- grows with the archive: for one video use the macros video_frames / object_timeline (sql/views/2*).
CREATE OR REPLACE VIEW object_frames AS
SELECT video_id, track_key, object_id, frame_idx, t, x0, y0, x1, y1, area, score,
       mask_rle, mask_h, mask_w
FROM {source:object_frames};
