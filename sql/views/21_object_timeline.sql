-- object_timeline(video_id, object_id): one object's timeline in the latest tracking of its video,
-- frame by frame (same columns as object_frames), ordered by frame_idx. Reads only that video's folder.
--   FROM object_timeline('<video_id>', 3)
CREATE OR REPLACE MACRO object_timeline(vid, oid) AS TABLE
SELECT f.*
FROM video_frames(vid) AS f
JOIN latest_tracks AS l ON l.video_id = f.video_id AND l.track_key = f.track_key
WHERE f.object_id = oid
ORDER BY f.frame_idx;
