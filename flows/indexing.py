"""Indexing descriptions for search, for the flows and for `pixelrefer index` (no Prefect here).

Which embedder: the one asked for (`--embedder`), else the store's current one (the embedder its vectors
were made with, by its full identity, so every run keeps extending the same index), else the default,
wordllama. Embedders are built once per process (`get_embedder`). When the identity is known without
loading the model (the store's own embedder), a run with nothing left to index loads nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flows.stages.index import IndexOutcome, index_units, plan_index
from flows.stages.outcomes import Status
from pixelrefer_core.embedding import DEFAULT_EMBEDDER, Embedder, build_embedder, parse_ref
from storage import Store
from storage.catalog import DEFAULT_LEASE_S

__all__ = ["IndexReport", "current_embedder_id", "get_embedder", "index_descriptions", "index_work_left",
           "known_identity", "resolve_embedder_ref"]

log = logging.getLogger(__name__)
_EMBEDDERS: dict[tuple[str, str], Embedder] = {}
_LOCK = threading.Lock()


def current_embedder_id(store: Store) -> str | None:
    """The identity of the store's current embedder, from its views file (None: no vectors, or no views yet)."""
    if not os.path.isfile(store.db_path):
        return None
    from flows.vectors import store_embedders
    from storage.query import open_views

    con = open_views(store.db_path, store.root)
    try:
        current = [e for e in store_embedders(con) if e.is_current]
    finally:
        con.close()
    return current[0].embedder_id if current else None


def resolve_embedder_ref(store: Store, requested: str | None) -> str:
    """`requested`, else the store's current embedder, else the default (see module docstring)."""
    if requested:
        return requested
    return current_embedder_id(store) or DEFAULT_EMBEDDER


def known_identity(ref: str) -> str | None:
    """The embedder identity `ref` spells out (revision and dimension given), else None (load to know)."""
    parsed = parse_ref(ref)
    return parsed.identity if parsed.revision and parsed.dim else None


def get_embedder(ref: str, device: str = "cpu") -> Embedder:
    """The embedder of `ref` on `device`, built once per process (quietly: no weight-loading bars)."""
    key = (ref, device)
    with _LOCK:
        if key not in _EMBEDDERS:
            if parse_ref(ref).library != "wordllama":
                from flows.runtime import quiet_model_bars

                quiet_model_bars()
            log.info("building embedder %s on %s", ref, device)
            _EMBEDDERS[key] = build_embedder(ref, device=device)
        return _EMBEDDERS[key]


@dataclass
class IndexReport:
    """What an index pass did: the embedder and one outcome per descriptions unit."""

    embedder_id: str
    outcomes: list[IndexOutcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def vectors_written(self) -> int:
        return sum(o.n_vectors for o in self.outcomes if o.status == Status.DONE)

    def line(self) -> str:
        parts = [f"{self.count(Status.DONE)} unit(s) indexed ({self.vectors_written} vector(s))",
                 f"{self.count(Status.SKIPPED)} already indexed"]
        if self.count(Status.BUSY):
            parts.append(f"{self.count(Status.BUSY)} busy with another worker")
        if self.count(Status.FAILED):
            parts.append(f"{self.count(Status.FAILED)} failed")
        return f"index with {self.embedder_id}: " + ", ".join(parts)


def index_descriptions(store: Store, described: Iterable[tuple[str, str]], ref: str, *, worker_id: str,
                       device: str = "cpu", lease_s: float = DEFAULT_LEASE_S, max_texts: int = 2048,
                       progress: Callable[[str], None] | None = None) -> IndexReport:
    """Embed the descriptions units `described` ((video_id, describe_key)) that have no vectors from `ref` yet.

    Raises UnknownEmbedderError / EmbedderError / ModelLoadError when the embedder cannot be had, and
    EmbedderMismatchError when `ref` is an identity that no longer loads here."""
    described = list(described)
    embedder: Embedder | None = None
    identity = known_identity(ref)
    if identity is None:
        embedder = get_embedder(ref, device)
        identity = embedder.embedder_id
    todo, settled = plan_index(store, described, identity)
    report = IndexReport(identity, settled)
    if todo:
        embedder = embedder or get_embedder(ref, device)  # an identity: building checks it is what loads here
        if progress:
            progress(f"indexing {len(todo)} description unit(s) with {identity}")
        report.outcomes += index_units(store, todo, embedder, worker_id, max_texts=max_texts, lease_s=lease_s,
                                       progress=progress)
    return report


def index_work_left(store: Store, described: Iterable[tuple[str, str]], requested: str | None,
                    device: str = "cpu") -> bool:
    """Whether indexing the descriptions units `described` with a run's embedder (`requested`, else the
    store's, else wordllama) has anything left to do: what a run plan needs to tell "nothing to do" from
    "only the index phase is left" (e.g. after `--embedder` changed). Loads no model when the embedder is
    known by its identity (the store's own)."""
    ref = resolve_embedder_ref(store, requested)
    identity = known_identity(ref) or get_embedder(ref, device).embedder_id
    todo, _ = plan_index(store, described, identity)
    return bool(todo)
