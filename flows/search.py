"""Search by meaning: objects ranked by how close their descriptions are to a text, or to another object.

`search(store, request)` embeds the text with the embedder the store's vectors were made with (built
from the recorded identity, so a changed model is an error, never a wrong ranking), then ranks in DuckDB,
by brute force over the vectors of that one embedder, on a locked-down connection:

1. the objects of the latest tracking of each video, narrowed by `--where` (a predicate over
   objects/videos checked by storage.predicates, applied before ranking);
2. each description vector scored by dot product with the query (vectors and query have unit norm, so
   this is the cosine similarity); a description about several objects counts for each of them;
3. each object once, with its best-matching description; the best `limit` objects (exact: see `rank`).

`--like VIDEO_ID:OBJECT_ID` compares that object's own answers with other objects' answers to the same prompts
and leaves the object itself out. Bad input raises SearchError (a ValueError) or the errors of the parts
(PredicateError, QueryTextError, EmbedderMismatchError, NothingToSearchError), each saying what is wrong.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from flows.vectors import (
    NothingToSearchError,
    StoreEmbedder,
    choose_embedder,
    lazy_embedder,
    nothing_to_search,
)
from flows.vectors import store_embedders as list_store_embedders

if TYPE_CHECKING:
    import duckdb

    from pixelrefer_core.embedding import Embedder

__all__ = ["COLUMNS", "NothingToSearchError", "SearchError", "SearchHit", "SearchRequest", "SearchResult", "rank",
           "search"]

log = logging.getLogger(__name__)
MAX_LIMIT = 10_000
_LIKE = re.compile(r"^([0-9A-Za-z]+):(\d+)$")
COLUMNS = ["rank", "score", "uri", "video_id", "object_id", "t_start", "t_end", "prompt_id", "text"]


class SearchError(ValueError):
    """A search request that cannot be served; the message names the argument and the reason."""


@dataclass(frozen=True)
class SearchRequest:
    """What to search: exactly one of `text` and `like` ("VIDEO_ID:OBJECT_ID", the video id or a unique
    prefix of it). `where`: predicate over objects/videos; `prompt_id`: only descriptions of that prompt;
    `embedder`: one of the store's embedders (default: its current one)."""

    text: str | None = None
    like: str | None = None
    where: str | None = None
    prompt_id: str | None = None
    limit: int = 20
    embedder: str | None = None


@dataclass(frozen=True)
class SearchHit:
    """One object, with its best-matching description. Times in seconds from the start of the video;
    `thumbnail_frame`: the frame of its row in `object_thumbnails`, when the store has thumbnails."""

    rank: int
    score: float
    uri: str
    video_id: str
    track_key: str
    object_id: int
    t_start: float
    t_end: float
    prompt_id: str
    text: str
    describe_key: str
    object_ids: tuple[int, ...]
    thumbnail_frame: int | None = None


@dataclass
class SearchResult:
    hits: list[SearchHit]
    embedder_id: str
    with_thumbnails: bool = False
    notes: list[str] = field(default_factory=list)  # e.g. descriptions not indexed yet

    @property
    def columns(self) -> list[str]:
        if not self.with_thumbnails:
            return COLUMNS
        # before the text, which stays last (the widest column, read at the end of a table or CSV line)
        return COLUMNS[:-2] + ["thumbnail_frame"] + COLUMNS[-2:]

    def rows(self) -> list[tuple[Any, ...]]:
        return [tuple(getattr(h, c) for c in self.columns) for h in self.hits]


def _check_request(request: SearchRequest) -> SearchRequest:
    if (request.text is None) == (request.like is None):
        raise SearchError("give a search text or --like VIDEO_ID:OBJECT_ID (exactly one)")
    if not isinstance(request.limit, int) or request.limit < 1:
        raise SearchError(f"--limit must be 1 or more, not {request.limit}")
    if request.limit > MAX_LIMIT:
        raise SearchError(f"--limit must be at most {MAX_LIMIT}, not {request.limit}")
    if request.like is not None and not _LIKE.match(request.like.strip()):
        raise SearchError(f"--like {request.like!r}: give VIDEO_ID:OBJECT_ID, e.g. 3fa2b1c9:4 (the video id or a "
                          "unique prefix, then the object id)")
    if request.prompt_id is not None and not request.prompt_id.strip():
        raise SearchError("--prompt is empty: give a prompt id")
    return request


def _object_filter(where: str | None) -> str:
    """The WHERE clause selecting latest-tracking objects (aliases `objects`, `videos`)."""
    if where is None:
        return ""
    from storage.predicates import validate_predicate

    return "WHERE " + validate_predicate(where)


def _check_boolean(con: duckdb.DuckDBPyConnection, where: str, clause: str) -> None:
    import duckdb

    from storage.errors import PredicateError

    probe = ("DESCRIBE SELECT " + clause.removeprefix("WHERE ") + " AS p FROM latest_objects AS objects "
             "JOIN videos AS videos ON objects.video_id = videos.video_id LIMIT 0")
    try:
        kind = con.execute(probe).fetchall()[0][1]
    except duckdb.Error as exc:
        raise PredicateError(where, str(exc).splitlines()[0]) from None
    if kind != "BOOLEAN":
        raise PredicateError(where, f"it is not a boolean expression (its type is {kind})")


def _like_queries(con: duckdb.DuckDBPyConnection, like: str, chosen: StoreEmbedder,
                  prompt_id: str | None) -> tuple[list[tuple[str | None, np.ndarray]], tuple[str, int]]:
    """One query per prompt the object was described with alone (the normalised mean of its vectors for
    that prompt), and (video_id, object_id) of the object. Its answers are compared with other objects'
    answers to the same prompts only: a caption with captions, an answer with answers to that question."""
    m = _LIKE.match(like.strip())
    assert m is not None
    prefix, object_id = m.group(1).lower(), int(m.group(2))
    videos = [r[0] for r in con.execute("SELECT video_id FROM latest_tracks WHERE starts_with(video_id, ?)",
                                        [prefix]).fetchall()]
    if not videos:
        raise SearchError(f"--like {like}: no tracked video has an id starting with {prefix!r}")
    if len(videos) > 1:
        raise SearchError(f"--like {like}: {len(videos)} videos have ids starting with {prefix!r}; give more of it")
    video_id = videos[0]
    found = con.execute("SELECT count(*) FROM latest_objects WHERE video_id = ? AND object_id = ?",
                        [video_id, object_id]).fetchall()
    if not found[0][0]:
        raise SearchError(f"--like {like}: video {video_id[:12]} has no object {object_id} in its latest tracking")
    rows = con.execute(
        f"SELECT v.prompt_id, v.vector::FLOAT[{chosen.dim}] FROM all_description_vectors AS v "
        "JOIN latest_tracks AS l USING (video_id, track_key) "
        "WHERE v.embedder_id = ? AND v.video_id = ? AND v.object_ids = [?] "
        "AND (CAST(? AS VARCHAR) IS NULL OR v.prompt_id = ?) ORDER BY v.prompt_id",
        [chosen.embedder_id, video_id, object_id, prompt_id, prompt_id]).fetchall()
    if not rows:
        raise SearchError(f"--like {like}: object {object_id} of video {video_id[:12]} has no description of its own "
                          f"indexed with {chosen.embedder_id}" + (f" for prompt {prompt_id!r}" if prompt_id else "")
                          + " (describe it, then pixelrefer index)")
    by_prompt: dict[str, list[np.ndarray]] = {}
    for pid, vector in rows:
        by_prompt.setdefault(pid, []).append(np.asarray(vector, np.float32))
    queries: list[tuple[str | None, np.ndarray]] = []
    for pid, vectors in by_prompt.items():
        mean = np.mean(vectors, axis=0)
        norm = float(np.linalg.norm(mean))
        queries.append((pid, (mean / norm if norm > 0 else mean).astype(np.float32)))
    return queries, (video_id, object_id)


# list_inner_product on the stored FLOAT[] lists (all of one embedder, so of one length; the query's length
# is checked in `rank`): casting every row to FLOAT[dim] first costs more than the product itself
# (benchmarks/bench_search.py, docs/search.md).
_SCORED_SQL = """SELECT video_id, track_key, describe_key, object_ids, prompt_id,
           list_inner_product(vector, $query{i}::FLOAT[]) AS score
    FROM all_description_vectors
    WHERE embedder_id = $embedder AND (CAST($prompt{i} AS VARCHAR) IS NULL OR prompt_id = CAST($prompt{i} AS VARCHAR))"""
_RANK_SQL = """
WITH sel AS (
    SELECT objects.video_id, objects.track_key, objects.object_id, objects.t_start, objects.t_end, videos.uri
    FROM latest_objects AS objects JOIN videos AS videos ON objects.video_id = videos.video_id
    {where}
),
scored AS (
    {scored}
),
top AS MATERIALIZED (
    {top}
),
per_object AS (
    SELECT s.video_id, s.track_key, o.object_id, s.score, s.describe_key, s.object_ids, s.prompt_id
    FROM top AS s, unnest(s.object_ids) AS o(object_id)
),
best AS (
    SELECT p.video_id, p.track_key, p.object_id, max(p.score) AS score,
           arg_max(p.describe_key, p.score) AS describe_key, arg_max(p.object_ids, p.score) AS object_ids,
           arg_max(p.prompt_id, p.score) AS prompt_id
    FROM per_object AS p SEMI JOIN sel USING (video_id, track_key, object_id)
    WHERE CAST($skip_video AS VARCHAR) IS NULL
       OR NOT (p.video_id = CAST($skip_video AS VARCHAR) AND p.object_id = CAST($skip_object AS BIGINT))
    GROUP BY p.video_id, p.track_key, p.object_id
    ORDER BY score DESC, p.video_id, p.object_id
    LIMIT $limit
)
SELECT b.score, sel.uri, b.video_id, b.track_key, b.object_id, sel.t_start, sel.t_end, b.prompt_id, d.answer,
       b.describe_key, b.object_ids{thumb_select}
FROM best AS b
JOIN sel USING (video_id, track_key, object_id)
JOIN descriptions AS d
    ON d.video_id = b.video_id AND d.describe_key = b.describe_key AND d.object_ids = b.object_ids
{thumb_join}
QUALIFY row_number() OVER (PARTITION BY b.video_id, b.track_key, b.object_id ORDER BY d.created_at DESC) = 1
ORDER BY b.score DESC, b.video_id, b.object_id
"""


def _has_thumbnails(con: duckdb.DuckDBPyConnection) -> bool:
    names = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'object_thumbnails'").fetchall()}
    return {"video_id", "track_key", "object_id", "frame_idx"} <= names


def _selected_fraction(con: duckdb.DuckDBPyConnection, where: str) -> float:
    """The fraction of the latest tracking's objects that `where` (a validated WHERE clause) keeps."""
    rows = con.execute("SELECT count(*) FILTER (" + where + "), count(*) FROM latest_objects AS objects "
                       "JOIN videos AS videos ON objects.video_id = videos.video_id").fetchall()
    kept, total = rows[0]
    return kept / total if total else 0.0


def rank(con: duckdb.DuckDBPyConnection, queries: list[tuple[str | None, np.ndarray]], chosen: StoreEmbedder,
         request: SearchRequest, skip: tuple[str, int] | None = None,
         exhaustive: bool = False) -> tuple[list[SearchHit], bool]:
    """The best `request.limit` objects for `queries`: (prompt id or None for every prompt, a unit vector of
    `chosen`'s dimension) each; an object's score is its best description's, over all queries.

    Exact, in one scan in the usual case: the best `k` descriptions are kept first (a top-k heap, not a
    sort of everything), then grouped per object. When they hold fewer than `limit` selected objects
    (many descriptions per object, a selective --where), k grows; once k nears the number of vectors every
    description is grouped. Any object missing from the top k has all its descriptions scored at most
    the k-th, so the objects found in it are the true best. `exhaustive`: group every description at once
    (the reference the top-k path is tested against)."""
    import duckdb

    from pixelrefer_core.embedding import EmbedderMismatchError

    for _, query in queries:
        if query.shape != (chosen.dim,):
            raise EmbedderMismatchError(f"{chosen.embedder_id} ({chosen.dim}-d vectors)",
                                        f"a query vector of shape {query.shape}")
    where = _object_filter(request.where)
    fraction = 1.0
    if request.where is not None:
        _check_boolean(con, request.where, where)
        fraction = _selected_fraction(con, where)
        if fraction == 0.0:
            return [], _has_thumbnails(con)
    thumbs = _has_thumbnails(con)
    dim = int(chosen.dim)
    params: dict[str, Any] = {"embedder": chosen.embedder_id, "limit": request.limit,
                              "skip_video": skip[0] if skip else None, "skip_object": skip[1] if skip else None}
    for i, (prompt_id, query) in enumerate(queries):
        params[f"query{i}"] = [float(x) for x in query]
        params[f"prompt{i}"] = prompt_id
    k = int(np.ceil((4 * request.limit + 64) / fraction))
    while True:
        exhaustive = exhaustive or k * 2 >= chosen.n_vectors * len(queries)
        sql = _RANK_SQL.format(
            where=where, scored="\n    UNION ALL\n    ".join(_SCORED_SQL.format(dim=dim, i=i) for i in range(len(queries))),
            top="SELECT * FROM scored" if exhaustive else
                f"SELECT * FROM scored ORDER BY score DESC, video_id, describe_key, object_ids LIMIT {k}",
            thumb_select=", t.frame_idx AS thumbnail_frame" if thumbs else "",
            thumb_join=("LEFT JOIN object_thumbnails AS t ON t.video_id = b.video_id AND t.track_key = b.track_key "
                        "AND t.object_id = b.object_id") if thumbs else "")
        try:
            rows = con.execute(sql, params).fetchall()
        except duckdb.Error as exc:  # e.g. a --where that fails on some rows (a cast), or the time limit
            from storage.errors import QueryError

            raise QueryError(str(exc)) from None
        if exhaustive or len(rows) >= request.limit:
            break
        k *= 8
    hits = [SearchHit(rank=i, score=float(r[0]), uri=r[1], video_id=r[2], track_key=r[3], object_id=int(r[4]),
                      t_start=float(r[5]), t_end=float(r[6]), prompt_id=r[7], text=r[8], describe_key=r[9],
                      object_ids=tuple(int(x) for x in r[10]), thumbnail_frame=r[11] if thumbs else None)
            for i, r in enumerate(rows, 1)]
    return hits, thumbs


def _check_prompt(con: duckdb.DuckDBPyConnection, prompt_id: str, chosen: StoreEmbedder) -> None:
    prompts = [r[0] for r in con.execute("SELECT DISTINCT prompt_id FROM all_description_vectors "
                                         "WHERE embedder_id = ? ORDER BY 1", [chosen.embedder_id]).fetchall()]
    if prompt_id not in prompts:
        raise SearchError(f"--prompt {prompt_id!r}: no description of that prompt is indexed; the store's "
                          f"prompts: {', '.join(prompts) or 'none'}")


def search(con: duckdb.DuckDBPyConnection, request: SearchRequest, store: str,
           embedder_for: Callable[[str], Callable[[], Embedder]] = lazy_embedder) -> SearchResult:
    """Run `request` on a locked-down connection to the views file of `store` (see module docstring).

    `embedder_for(embedder_id)` gives a function building the embedder of a store's vectors (default: built
    once per process)."""
    _check_request(request)
    text = None
    if request.text is not None:
        from pixelrefer_core.embedding import check_query_text

        text = check_query_text(request.text)
    embedders = list_store_embedders(con)
    if not embedders:
        raise nothing_to_search(con, store)
    chosen = choose_embedder(embedders, request.embedder, store)
    if request.prompt_id is not None:
        _check_prompt(con, request.prompt_id, chosen)
    notes = []
    missing = _unindexed(con, chosen)
    if missing:
        notes.append(f"{missing} description(s) have no vector from {chosen.embedder_id} yet and cannot match: "
                     f"run pixelrefer index --store {store}")
    skip = None
    if text is not None:
        embedder = embedder_for(chosen.embedder_id)()
        if embedder.embedder_id != chosen.embedder_id:
            from pixelrefer_core.embedding import EmbedderMismatchError

            raise EmbedderMismatchError(chosen.embedder_id, embedder.embedder_id)
        queries: list[tuple[str | None, np.ndarray]] = [(request.prompt_id, embedder.embed_queries([text])[0])]
    else:
        assert request.like is not None
        queries, skip = _like_queries(con, request.like, chosen, request.prompt_id)
    hits, thumbs = rank(con, queries, chosen, request, skip)
    return SearchResult(hits, chosen.embedder_id, thumbs, notes)


def _unindexed(con: duckdb.DuckDBPyConnection, chosen: StoreEmbedder) -> int:
    from flows.vectors import described_count

    return max(0, described_count(con) - chosen.n_vectors)

