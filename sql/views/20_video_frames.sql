-- video_frames(video_id): the timeline rows of ONE video, every tracking (same columns as object_frames).
-- Reads only <root>/object_frames/video_id=<video_id>/ (never lists nor opens another video's files), so
-- it costs the same in an archive of 100 or 100,000 videos. video_id must be a constant: a literal, or
-- getvariable('name') after `SET VARIABLE name = (SELECT ...)`. A video without frames gives no rows.
--   FROM video_frames('<video_id>') WHERE t BETWEEN 10 AND 20
CREATE OR REPLACE MACRO video_frames(vid) AS TABLE
SELECT video_id, track_key, object_id, frame_idx, t, x0, y0, x1, y1, area, score, mask_rle, mask_h, mask_w
FROM {video_source:object_frames:vid};
