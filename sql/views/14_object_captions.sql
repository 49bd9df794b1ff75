-- object_captions: one row per object of the latest tracking of each video, with its latest
-- single-object caption (task = 'caption'; NULL caption when it has none yet).
CREATE OR REPLACE VIEW object_captions AS
WITH captions AS (
    SELECT video_id, track_key, object_ids[1] AS object_id, answer AS caption, prompt AS caption_prompt,
           model_id AS caption_model_id, created_at AS captioned_at
    FROM latest_descriptions
    WHERE task = 'caption' AND len(object_ids) = 1
    QUALIFY row_number() OVER (
        PARTITION BY video_id, track_key, object_ids[1]
        ORDER BY created_at DESC NULLS LAST, describe_key DESC) = 1
)
SELECT o.*, c.caption, c.caption_prompt, c.caption_model_id, c.captioned_at
FROM latest_objects AS o
LEFT JOIN captions AS c USING (video_id, track_key, object_id);
