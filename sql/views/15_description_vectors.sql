-- Description vectors (embeddings of the answers, for search by meaning; see docs/search.md).
-- A small table per row (one row per description and embedder): native copy inside the views file,
-- rebuilt at refresh. Vectors are float32 with unit L2 norm, so a dot product is a cosine similarity.
--
-- all_description_vectors: every embedder's vectors (a store keeps the old embedder's units when the
-- embedder changes); `vector` is a FLOAT[] list here because dimensions differ between embedders: pick
-- one embedder_id and cast, e.g. vector::FLOAT[256].
CREATE OR REPLACE VIEW all_description_vectors AS
SELECT video_id, track_key, describe_key, object_ids, prompt_id, embedder_id, dim, vector
FROM {source:description_vectors};

-- vector_embedders: one row per embedder with vectors in the store. is_current: the store's embedder,
-- the one `pixelrefer search` and embed() use and description_vectors shows (most vectors, then the
-- latest written; storage.vectors).
CREATE OR REPLACE VIEW vector_embedders AS
SELECT v.embedder_id, max(v.dim) AS dim, count(*) AS n_vectors,
       count(DISTINCT v.video_id || '/' || v._unit_key) AS n_units,
       to_timestamp(max(f.mtime_ns) / 1e9) AS last_indexed_at,
       coalesce(v.embedder_id = {vectors:embedder}, false) AS is_current
FROM _pixelrefer.description_vectors AS v
JOIN _pixelrefer.files AS f
    ON f.table_name = 'description_vectors' AND f.video_id = v.video_id AND f.unit_key = v._unit_key
GROUP BY v.embedder_id;

-- description_vectors: the vectors of the store's current embedder only, as fixed-size FLOAT[dim]
-- arrays, so any DuckDB client can rank them against a vector it brings:
--   SELECT video_id, object_ids, array_cosine_similarity(vector, $q::FLOAT[256]) AS score
--   FROM description_vectors ORDER BY score DESC LIMIT 10
-- (in `pixelrefer query`, embed('text') gives that vector; see sql/semantic_search.sql). One embedder
-- per view: vectors of different models or dimensions are never ranked together.
CREATE OR REPLACE VIEW description_vectors AS
SELECT video_id, track_key, describe_key, object_ids, prompt_id, embedder_id, dim,
       vector::FLOAT[{vectors:dim}] AS vector
FROM {source:description_vectors}
WHERE embedder_id = {vectors:embedder};
