-- The timeline of one object: where it is, frame by frame.
-- Answers: one row per frame of the object (latest tracking): time, box (pixels, x1/y1 exclusive),
-- centre, area and score.
-- Edit in `params`: video_id (NULL = the first video with objects), object_id.
WITH params AS (
    SELECT NULL::VARCHAR AS video_id, 1 AS object_id
),
chosen AS (
    SELECT coalesce(p.video_id, (SELECT min(video_id) FROM latest_objects)) AS video_id, p.object_id
    FROM params AS p
)
SELECT f.frame_idx, f.t, f.x0, f.y0, f.x1, f.y1,
       (f.x0 + f.x1) / 2 AS cx, (f.y0 + f.y1) / 2 AS cy, f.area, f.score
FROM latest_object_frames AS f
JOIN chosen AS c ON f.video_id = c.video_id AND f.object_id = c.object_id
ORDER BY f.frame_idx;
