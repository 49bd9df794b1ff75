-- Which red objects move left, and when?
-- Answers: objects (latest tracking) of the given colour whose mean direction of motion is within
-- tolerance_deg of "left" (180 degrees; 0 = right, 90 = up, 270 = down) and that move at least
-- min_speed_px_s, with their time span, speed and caption.
-- Edit in `params`: color, direction (degrees), tolerance_deg, min_speed_px_s.
WITH params AS (
    SELECT 'red' AS color, 180.0 AS direction, 45.0 AS tolerance_deg, 1.0 AS min_speed_px_s
)
SELECT o.video_id, o.object_id, o.t_start, o.t_end, o.t_end - o.t_start AS duration_s,
       o.mean_speed_px_s, o.direction_deg, o.caption
FROM object_captions AS o, params AS p
WHERE lower(o.color) = lower(p.color)
  AND o.mean_speed_px_s >= p.min_speed_px_s
  -- smallest angle between the two directions, in [0, 180]
  AND 180 - abs(abs(o.direction_deg - p.direction) - 180) <= p.tolerance_deg
ORDER BY o.video_id, o.t_start;
