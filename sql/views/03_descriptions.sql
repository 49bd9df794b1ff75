-- descriptions: every answer ever written (captions and questions), all describe_keys.
-- A small table: native copy inside the views file, rebuilt at refresh.
CREATE OR REPLACE VIEW descriptions AS
SELECT video_id, track_key, object_ids, describe_key, prompt_id, prompt, task, answer, model_id,
       frames_used, n_tokens, latency_ms, run_id, created_at
FROM {source:descriptions};
