"""Description vectors in the views file: which embedder's vectors the typed view shows.

A store may hold the vectors of several embedders (changing the embedder adds units beside the old
ones), of different dimensions. A DuckDB ``FLOAT[dim]`` column has one dimension, and ranking vectors
of different models against each other is meaningless, so the ``description_vectors`` view shows the
vectors of ONE embedder, the store's *current* one, as ``FLOAT[dim]``; ``all_description_vectors``
shows every embedder's, as ``FLOAT[]`` lists (cast ``vector::FLOAT[dim]`` after choosing an
``embedder_id``); ``vector_embedders`` lists the embedders with their counts.

The current embedder is the one with the most vectors, then the one written last (then the greatest
id): a complete re-index with another embedder makes it current, a partial one (killed, or still
running) does not take the store's search away from the complete one. Its id and dimension are filled
into the view SQL at every refresh (placeholders ``{vectors:embedder}`` and ``{vectors:dim}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.views import INTERNAL_SCHEMA

if TYPE_CHECKING:
    import duckdb

__all__ = ["CURRENT_EMBEDDER_SQL", "vector_view_values"]

_S = INTERNAL_SCHEMA
CURRENT_EMBEDDER_SQL = f"""
SELECT v.embedder_id, max(v.dim) AS dim, count(*) AS n_vectors, max(f.mtime_ns) AS written_ns
FROM {_S}.description_vectors AS v
JOIN {_S}.files AS f
    ON f.table_name = 'description_vectors' AND f.video_id = v.video_id AND f.unit_key = v._unit_key
GROUP BY v.embedder_id
ORDER BY n_vectors DESC, written_ns DESC, v.embedder_id DESC
LIMIT 1
"""


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def vector_view_values(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The placeholder values of the vector views for the views file open on `con` (after its
    materialised tables and manifest are up to date): the current embedder's id as a SQL literal (NULL
    when the store has no vectors) and its dimension (1 then: the typed view has no rows)."""
    rows = con.execute(CURRENT_EMBEDDER_SQL).fetchall()  # fetchall: a half-fetched result blocks the connection
    if not rows:
        return {"vectors:embedder": "NULL", "vectors:dim": "1"}
    embedder_id, dim = rows[0][0], rows[0][1]
    return {"vectors:embedder": _sql_str(str(embedder_id)), "vectors:dim": str(int(dim))}
