-- The timeline of one object: where it is, frame by frame.
-- Answers: one row per frame of the object (latest tracking of its video): time, box (pixels, x1/y1
-- exclusive), centre, area and score. Reads only that video's files (the object_timeline macro), so it
-- costs the same in an archive of any size.
-- Edit the two SET VARIABLE lines: video_id (a literal '<sha256>'; as written: the first video with
-- objects) and object_id.
SET VARIABLE video_id = (SELECT min(video_id) FROM latest_tracks WHERE n_objects > 0);
SET VARIABLE object_id = 1;
SELECT frame_idx, t, x0, y0, x1, y1, (x0 + x1) / 2 AS cx, (y0 + y1) / 2 AS cy, area, score
FROM object_timeline(getvariable('video_id'), getvariable('object_id'))
ORDER BY frame_idx;
