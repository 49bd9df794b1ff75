-- video_paths: every path a video's bytes were found at (the same content under several names is
-- stored, tracked and described once; `videos` keeps one row per video_id with the uri it was first
-- probed from). From the catalog (Catalog.record_video_path), copied into the views file at refresh.
CREATE OR REPLACE VIEW video_paths AS
SELECT video_id, uri, size_bytes, first_seen, last_seen
FROM _pixelrefer.video_paths;
