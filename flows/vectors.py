"""A store's embedders: which made its vectors, which one a run uses, the one embedder cache of a
process, and the `embed(text)` SQL function.

Read on a locked-down connection (storage.query.open_views): which embedders made vectors
(`vector_embedders`, one of them current), how many descriptions there are to index, and the errors a
user gets when there is nothing to search (no descriptions: run describe first; descriptions but no
vectors: run index). `resolve_embedder_ref` is the choice of a run and of `pixelrefer index`:
`--embedder`, else the store's current embedder, else wordllama. Light on purpose: `pixelrefer search`
and `pixelrefer query` import it; embedders are built (once per process, `get_embedder`) only when a
text is embedded.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from pixelrefer_core.embedding import Embedder
    from storage import Store

__all__ = ["NothingToSearchError", "StoreEmbedder", "choose_embedder", "current_embedder_id", "described_count",
           "embed_function", "get_embedder", "known_identity", "lazy_embedder", "nothing_to_search",
           "resolve_embedder_ref", "store_embedders"]

log = logging.getLogger(__name__)


class NothingToSearchError(ValueError):
    """The store cannot be searched (yet): the message says what to run."""


@dataclass(frozen=True)
class StoreEmbedder:
    """An embedder whose vectors are in the store (a row of the `vector_embedders` view)."""

    embedder_id: str
    dim: int
    n_vectors: int
    is_current: bool


def store_embedders(con: duckdb.DuckDBPyConnection) -> list[StoreEmbedder]:
    """The store's embedders, the current one first."""
    rows = con.execute("SELECT embedder_id, dim, n_vectors, is_current FROM vector_embedders "
                       "ORDER BY is_current DESC, n_vectors DESC, embedder_id").fetchall()
    return [StoreEmbedder(str(e), int(d), int(n), bool(c)) for e, d, n, c in rows]


def described_count(con: duckdb.DuckDBPyConnection) -> int:
    """Descriptions with an answer to embed (blank answers get no vector)."""
    rows = con.execute("SELECT count(*) FROM descriptions WHERE length(trim(coalesce(answer, ''))) > 0").fetchall()
    return int(rows[0][0])


def nothing_to_search(con: duckdb.DuckDBPyConnection, store: str) -> NothingToSearchError:
    """The error for a store without vectors, saying what to run."""
    n = described_count(con)
    if n == 0:
        return NothingToSearchError(
            f"the store {store} has no descriptions to search yet: describe its objects first "
            f"(pixelrefer run ARCHIVE --store {store}, or pixelrefer describe --store {store} for objects "
            "already tracked)")
    return NothingToSearchError(f"the store's {n} description(s) are not indexed for search: run "
                                f"pixelrefer index --store {store}")


def choose_embedder(embedders: list[StoreEmbedder], requested: str | None, store: str) -> StoreEmbedder:
    """The current embedder, or the store's embedder `requested` names (an identity, or a reference
    matching one library:model[:dim]); NothingToSearchError listing the store's embedders otherwise."""
    current = next((e for e in embedders if e.is_current), embedders[0])
    if requested is None:
        return current
    from pixelrefer_core.embedding.ids import parse_ref

    want = parse_ref(requested)
    for e in embedders:
        have = parse_ref(e.embedder_id)
        if e.embedder_id == requested or (
            (have.library, have.model) == (want.library, want.model)
            and want.revision in (None, have.revision) and want.expected_dim in (None, have.dim)
        ):
            return e
    listed = ", ".join(f"{e.embedder_id} ({e.n_vectors} vectors)" for e in embedders)
    raise NothingToSearchError(f"the store has no vectors made by {requested!r}; it has {listed}. Index with it "
                               f"first (pixelrefer index --store {store} --embedder {requested}) or leave "
                               "--embedder out")


_CACHE: dict[tuple[str, str], Embedder] = {}
_LOCK = threading.Lock()


def get_embedder(ref: str, device: str = "cpu") -> Embedder:
    """The embedder `ref` (a reference or an identity) names, on `device`, built once per process (quietly:
    no weight-loading bars). Building an identity checks that what loads here is that embedder
    (EmbedderMismatchError otherwise)."""
    key = (ref, device)
    with _LOCK:
        if key not in _CACHE:
            from pixelrefer_core.embedding import build_embedder, parse_ref

            if parse_ref(ref).library != "wordllama":
                from flows.runtime import quiet_model_bars

                quiet_model_bars()
            log.info("building embedder %s on %s", ref, device)
            _CACHE[key] = build_embedder(ref, device=device)
        return _CACHE[key]


def lazy_embedder(embedder_id: str, device: str = "cpu") -> Callable[[], Embedder]:
    """A function giving `get_embedder(embedder_id, device)`, built on its first call only."""
    return lambda: get_embedder(embedder_id, device)


def current_embedder_id(store: Store) -> str | None:
    """The identity of the store's current embedder, from its views file (None: no vectors, or no views yet)."""
    if not os.path.isfile(store.db_path):
        return None
    from storage.query import open_views

    con = open_views(store.db_path, store.root)
    try:
        current = [e for e in store_embedders(con) if e.is_current]
    finally:
        con.close()
    return current[0].embedder_id if current else None


def resolve_embedder_ref(store: Store, requested: str | None) -> str:
    """The embedder a run or `pixelrefer index` uses: `requested`, else the store's current one (by its
    full identity, so every run keeps extending the same index), else the default, wordllama."""
    if requested:
        return requested
    from pixelrefer_core.embedding import DEFAULT_EMBEDDER

    return current_embedder_id(store) or DEFAULT_EMBEDDER


def known_identity(ref: str) -> str | None:
    """The embedder identity `ref` spells out (revision and dimension given), else None (load to know)."""
    from pixelrefer_core.embedding import parse_ref

    parsed = parse_ref(ref)
    return parsed.identity if parsed.revision and parsed.dim else None


def embed_function(store: str, device: str = "cpu") -> Callable[[duckdb.DuckDBPyConnection], None]:
    """A `prepare` hook for storage.query: registers `embed(text)`, the query vector of the store's current
    embedder as FLOAT[dim] (the type of `description_vectors.vector`). The embedder is built on the first
    call only. In a store without vectors, embed() fails with a message saying what to run."""

    def prepare(con: duckdb.DuckDBPyConnection) -> None:
        embedders = store_embedders(con)
        current = next((e for e in embedders if e.is_current), None)
        if current is None:
            reason = str(nothing_to_search(con, store))

            def unavailable(text: str) -> Any:
                raise NothingToSearchError(f"embed(): {reason}")

            con.create_function("embed", unavailable, ["VARCHAR"], "FLOAT[]")
            return
        get = lazy_embedder(current.embedder_id, device)

        def embed(text: str) -> list[float]:
            from pixelrefer_core.embedding import check_query_text

            vector = get().embed_queries([check_query_text(text)])[0]
            return [float(x) for x in vector]

        con.create_function("embed", embed, ["VARCHAR"], f"FLOAT[{current.dim}]")

    return prepare
