-- Which objects have a description mentioning given words?
-- Answers: objects (latest tracking) with any latest answer containing ALL the words
-- (case-insensitive), the matching answer and the object's time span.
-- Edit in `params`: words (a list of lowercase words), task (NULL = captions and questions).
WITH params AS (
    SELECT ['red', 'car'] AS words, NULL::VARCHAR AS task
),
matches AS (
    SELECT d.video_id, d.track_key, unnest(d.object_ids) AS object_id, d.task, d.prompt, d.answer
    FROM latest_descriptions AS d, params AS p
    WHERE (p.task IS NULL OR d.task = p.task)
      AND list_bool_and(list_transform(p.words, lambda w: contains(lower(d.answer), w)))
)
SELECT o.video_id, o.object_id, o.t_start, o.t_end, o.color, m.task, m.prompt, m.answer
FROM matches AS m
JOIN latest_objects AS o USING (video_id, track_key, object_id)
ORDER BY o.video_id, o.t_start, o.object_id;
