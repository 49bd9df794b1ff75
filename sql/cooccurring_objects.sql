-- Which objects co-occur (are visible at the same time) in a video?
-- Answers: pairs of objects of the latest tracking whose time spans overlap by at least
-- min_overlap_s seconds, with the overlap span.
-- Edit in `params`: video_id (NULL = every video), min_overlap_s.
WITH params AS (
    SELECT NULL::VARCHAR AS video_id, 0.0 AS min_overlap_s
)
SELECT a.video_id, a.object_id AS object_a, b.object_id AS object_b, a.color AS color_a, b.color AS color_b,
       greatest(a.t_start, b.t_start) AS overlap_from, least(a.t_end, b.t_end) AS overlap_to,
       least(a.t_end, b.t_end) - greatest(a.t_start, b.t_start) AS overlap_s
FROM latest_objects AS a
JOIN latest_objects AS b ON a.video_id = b.video_id AND a.object_id < b.object_id, params AS p
WHERE (p.video_id IS NULL OR a.video_id = p.video_id)
  AND least(a.t_end, b.t_end) - greatest(a.t_start, b.t_start) >= p.min_overlap_s
ORDER BY a.video_id, overlap_s DESC, object_a, object_b;
