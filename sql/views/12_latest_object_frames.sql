-- latest_object_frames: the timeline rows of the latest tracking of each video.
CREATE OR REPLACE VIEW latest_object_frames AS
SELECT f.*
FROM object_frames AS f
JOIN latest_tracks AS l USING (video_id, track_key);
