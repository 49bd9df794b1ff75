-- videos: one row per probed video. Columns: storage.schemas.SCHEMAS['videos'].
-- {source:videos} is filled by storage.views: the Parquet dataset <root>/videos (hive-partitioned by
-- video_id), or a typed empty relation while the store has no such files.
CREATE OR REPLACE VIEW videos AS
SELECT video_id, uri, size_bytes, fps, num_frames, duration_s, width, height, probed_at
FROM {source:videos};
