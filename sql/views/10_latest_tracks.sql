-- latest_tracks: the tracking a user most likely means, one row per video: "latest" = asked for last.
--
-- Candidates: the video's trackings (track_key) whose `objects` unit file exists and whose catalog unit
-- is done (a unit written without a catalog counts as done). A tracking that found zero objects is a
-- candidate too (its objects file has no rows; n_objects = 0, tracked_at null).
-- Choice: the candidate a run asked for most recently (Catalog.record_request, recorded every time a
-- run asks for a tracking, also when it skips it as already done: re-running the original settings
-- after an experiment makes that tracking current again); trackings never asked for (written without
-- the flows) come after, by the time they were tracked (max objects.tracked_at, else for a tracking
-- without objects the time its file was written); ties: greatest track_key.
--
-- Materialised at refresh from _pixelrefer.files (unit files present), _pixelrefer.objects,
-- _pixelrefer.requests and _pixelrefer.catalog_units (copies of the catalog's requests and units).
CREATE OR REPLACE TABLE _pixelrefer.latest_tracks AS
WITH candidates AS (
    SELECT f.video_id, f.unit_key AS track_key, to_timestamp(f.mtime_ns / 1e9) AS written_at
    FROM _pixelrefer.files AS f
    LEFT JOIN _pixelrefer.catalog_units AS u
        ON u.stage = {stage:objects} AND u.video_id = f.video_id AND u.unit_key = f.unit_key
    WHERE f.table_name = 'objects' AND (u.state IS NULL OR u.state = 'done')
),
stats AS (
    SELECT video_id, _unit_key AS track_key, max(tracked_at) AS tracked_at, count(*) AS n_objects
    FROM _pixelrefer.objects
    GROUP BY ALL
),
asked AS (
    SELECT video_id, unit_key AS track_key, requested_at
    FROM _pixelrefer.requests
    WHERE stage = {stage:objects}
)
SELECT c.video_id, c.track_key, s.tracked_at, coalesce(s.n_objects, 0) AS n_objects, a.requested_at
FROM candidates AS c
LEFT JOIN stats AS s USING (video_id, track_key)
LEFT JOIN asked AS a USING (video_id, track_key)
QUALIFY row_number() OVER (
    PARTITION BY c.video_id
    ORDER BY a.requested_at DESC NULLS LAST, coalesce(s.tracked_at, c.written_at) DESC, c.track_key DESC) = 1;

CREATE OR REPLACE VIEW latest_tracks AS
SELECT video_id, track_key, tracked_at, n_objects, requested_at
FROM _pixelrefer.latest_tracks;
