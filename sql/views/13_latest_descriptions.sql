-- latest_descriptions: the latest answer per object set and prompt, i.e. one row per
-- (video_id, track_key, object_ids, prompt_id, task), the one with the greatest created_at
-- (ties: greatest describe_key). All trackings are kept; join latest_tracks to narrow.
CREATE OR REPLACE VIEW latest_descriptions AS
SELECT *
FROM descriptions
QUALIFY row_number() OVER (
    PARTITION BY video_id, track_key, object_ids, prompt_id, task
    ORDER BY created_at DESC NULLS LAST, describe_key DESC) = 1;
