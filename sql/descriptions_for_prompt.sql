-- What did the model answer to one prompt, across the whole archive?
-- Answers: the latest answer to the prompt for every object (set) it was asked about, with the
-- video's uri, the model and when it was produced.
-- Edit in `params`: prompt (exact text; matched case-insensitively) — or filter on prompt_id instead.
WITH params AS (
    SELECT 'Describe this object.' AS prompt
)
SELECT d.video_id, v.uri, d.object_ids, d.task, d.answer, d.model_id, d.created_at
FROM latest_descriptions AS d
JOIN params AS p ON lower(d.prompt) = lower(p.prompt)
LEFT JOIN videos AS v USING (video_id)
ORDER BY d.video_id, d.object_ids;
