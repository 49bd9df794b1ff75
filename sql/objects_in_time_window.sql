-- Which objects are visible in a time window of a video?
-- Answers: every object of the latest tracking whose visible span [t_start, t_end] overlaps the
-- window, with its caption and the part of the window it is visible in.
-- Edit in `params`: video_id (NULL = every video), t_from / t_to (seconds from video start).
WITH params AS (
    SELECT NULL::VARCHAR AS video_id, 0.0 AS t_from, 5.0 AS t_to
)
SELECT o.video_id, o.object_id, o.color, o.t_start, o.t_end,
       greatest(o.t_start, p.t_from) AS visible_from, least(o.t_end, p.t_to) AS visible_to,
       o.caption
FROM object_captions AS o, params AS p
WHERE (p.video_id IS NULL OR o.video_id = p.video_id)
  AND o.t_start <= p.t_to AND o.t_end >= p.t_from
ORDER BY o.video_id, o.t_start, o.object_id;
