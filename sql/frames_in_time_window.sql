-- Where is every object of one video between two times?
-- Answers: the timeline rows of the latest tracking of one video whose time is in [t_from, t_to]
-- seconds: object, frame, time and box (pixels, x1/y1 exclusive). Reads only that video's files (the
-- video_frames macro), so it costs the same in an archive of any size.
-- Edit the SET VARIABLE lines: video_id (a literal '<sha256>'; as written: the first video with
-- objects), t_from and t_to.
SET VARIABLE video_id = (SELECT min(video_id) FROM latest_tracks WHERE n_objects > 0);
SET VARIABLE t_from = 0.0;
SET VARIABLE t_to = 0.25;
SELECT f.object_id, f.frame_idx, f.t, f.x0, f.y0, f.x1, f.y1
FROM video_frames(getvariable('video_id')) AS f
JOIN latest_tracks AS l USING (video_id, track_key)
WHERE f.t BETWEEN getvariable('t_from') AND getvariable('t_to')
ORDER BY f.t, f.object_id;
