-- latest_objects: the objects of the latest tracking of each video (same columns as objects).
CREATE OR REPLACE VIEW latest_objects AS
SELECT o.*
FROM objects AS o
JOIN latest_tracks AS l USING (video_id, track_key);
