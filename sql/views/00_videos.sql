-- videos: one row per probed video. Columns: storage.schemas.SCHEMAS['videos'].
-- A small table: {source:videos} is its native copy inside the views file (_pixelrefer.videos), rebuilt
-- from <root>/videos/video_id=*/probe.parquet at every refresh. decoded_frames / partial_reason (schema
-- v2): frames that really decode and why decoding stops early (null: complete, or probed before v2).
CREATE OR REPLACE VIEW videos AS
SELECT video_id, uri, size_bytes, fps, num_frames, duration_s, width, height, probed_at,
       decoded_frames, partial_reason
FROM {source:videos};
