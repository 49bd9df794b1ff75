-- How many objects does each video have, and how many are described?
-- Answers: per video (latest tracking): uri, duration, object count, objects with a caption,
-- and the colours seen. No parameters.
SELECT o.video_id, v.uri, v.duration_s, count(*) AS n_objects, count(o.caption) AS n_captioned,
       list(DISTINCT o.color ORDER BY o.color) AS colors
FROM object_captions AS o
LEFT JOIN videos AS v USING (video_id)
GROUP BY o.video_id, v.uri, v.duration_s
ORDER BY o.video_id;
