-- Every object of one concept (found by name with SAM 3: `pixelrefer run --concepts "car, person"`), per
-- video, with its time span and latest caption.
-- Answers: objects of the latest tracking whose label is the concept, with the concept's detection score,
-- the video's uri, the time span and the caption (NULL until described).
-- Edit in `params`: label (the concept as given, lower case: labels are stored normalised).
WITH params AS (
    SELECT 'car' AS label
)
SELECT o.video_id, v.uri, o.object_id, o.label, o.label_score, o.t_start, o.t_end,
       o.t_end - o.t_start AS duration_s, o.caption
FROM object_captions AS o
JOIN params AS p ON o.label = lower(p.label)
LEFT JOIN videos AS v USING (video_id)
ORDER BY o.video_id, o.t_start, o.object_id;
