-- Objects ranked by the meaning of their descriptions, with SQL filters: the red objects closest to
-- "dog on a leash". Run it with `pixelrefer query --store DIR --file semantic_search`.
--
-- description_vectors: one row per description (caption or answer) indexed with the store's embedder,
-- `vector` a FLOAT[dim] of unit norm. embed('text') (in `pixelrefer query`) is the query vector of that
-- same embedder, so the two are always of one model and one dimension. object_captions: the objects of
-- the latest tracking of each video, with their colour, time span and latest caption.
-- A description about several objects (object_ids) counts for each of them; an object scores as its
-- best-matching description. Outside `pixelrefer query`, replace embed('...') with a vector you bring,
-- e.g. $q::FLOAT[256] (the dim column says the size).
SELECT o.video_id, o.object_id, o.t_start, o.t_end, o.color, o.caption,
       max(array_cosine_similarity(v.vector, embed('dog on a leash'))) AS score
FROM description_vectors AS v, unnest(v.object_ids) AS u(object_id)
JOIN object_captions AS o ON o.video_id = v.video_id AND o.track_key = v.track_key AND o.object_id = u.object_id
WHERE o.color = 'red'
GROUP BY o.video_id, o.object_id, o.t_start, o.t_end, o.color, o.caption
ORDER BY score DESC
LIMIT 10;
