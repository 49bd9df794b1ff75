-- latest_tracks: the tracking a user most likely means, one row per video.
-- "Latest" = the track_key with the greatest tracked_at (tracked_at is written in objects rows);
-- trackings without tracked_at lose to those with one; ties go to the greatest track_key.
-- A tracking that found no objects has no rows in objects and so never counts as latest.
CREATE OR REPLACE VIEW latest_tracks AS
SELECT video_id, track_key, max(tracked_at) AS tracked_at, count(*) AS n_objects
FROM objects
GROUP BY video_id, track_key
QUALIFY row_number() OVER (
    PARTITION BY video_id ORDER BY max(tracked_at) DESC NULLS LAST, track_key DESC) = 1;
