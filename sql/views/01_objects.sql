-- objects: one row per tracked object, for every tracking (track_key) of every video.
-- Identity of an object: (video_id, track_key, object_id). Times in seconds from video start.
-- label / label_score (schema v2): the concept an object was found by (SAM 3 named concepts), else null.
-- A small table: native copy inside the views file, rebuilt at refresh.
CREATE OR REPLACE VIEW objects AS
SELECT video_id, track_key, object_id, first_frame, last_frame, t_start, t_end, frames_present,
       max_area, mean_area_frac, mean_score, discovered_by, color, mean_speed_px_s, direction_deg,
       tracked_at, label, label_score
FROM {source:objects};
