"""Stage 5: embed descriptions for search; one `description_vectors` unit per video x describe_key x embedder.

The unit key is `<describe_key>.<embedder key>` (`vector_unit_key`), the embedder key naming the library
and dimension and hashing the full identity (library:model@revision:dim), so a new embedder (another
model, revision or dimension) adds units beside the old ones and never overwrites nor mixes with them.

`plan_index` lists the units left to do for a set of descriptions units; `index_units` claims them,
embeds the answers of several units in one batched call (at most `max_texts` texts in memory), and writes
each unit as soon as its vectors are known; `index_descriptions` is one pass of both for an embedder
reference (what the index phase of a run and `pixelrefer index` call; no Prefect here). When the
embedder is known by its identity (the store's own), a pass with nothing left to index loads no model. Blank answers get no vector (nothing to match). A unit left
by a killed process is taken over (flows.stages.claims) and done again: a re-run resumes.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from flows.keys import stable_hash
from flows.progress import Meter
from flows.stages.outcomes import Status
from flows.stages.units import UnitRef, claim_ref, error_text, finish, prior_status, record_failure
from flows.vectors import get_embedder, known_identity, resolve_embedder_ref
from pixelrefer_core.embedding.ids import WORDLLAMA, parse_ref
from storage import Store, StoreError
from storage.catalog import DEFAULT_LEASE_S

if TYPE_CHECKING:
    from pixelrefer_core.embedding import Embedder

__all__ = ["INDEX_STAGE", "IndexOutcome", "IndexReport", "IndexUnit", "describe_units_of", "embedder_key",
           "index_descriptions", "index_units", "index_work_left", "plan_index", "vector_unit_key"]

log = logging.getLogger(__name__)
INDEX_STAGE = "index"
VECTORS = "description_vectors"
_ANSWER_COLUMNS = ["video_id", "track_key", "describe_key", "object_ids", "prompt_id", "answer"]
_SLUG = re.compile(r"[^a-z0-9]+")
REPORT_EVERY_S = 2.0  # at most one progress line this often (and the last one), however small the batches


def embedder_key(embedder_id: str) -> str:
    """`<library><dim>-<10 hex of the identity>`, e.g. `wordllama256-3f0c9a1b2d` (readable, file-name safe)."""
    ref = parse_ref(embedder_id)
    library = "wordllama" if ref.library == WORDLLAMA else "st"
    return f"{_SLUG.sub('', library)}{ref.dim or ''}-{stable_hash(embedder_id, 10)}"


def vector_unit_key(describe_key: str, embedder_id: str) -> str:
    return f"{describe_key}.{embedder_key(embedder_id)}"


@dataclass(frozen=True)
class IndexUnit:
    """The vectors of one descriptions unit (video_id, describe_key) by one embedder."""

    video_id: str
    describe_key: str
    embedder_id: str

    @property
    def key(self) -> str:
        return vector_unit_key(self.describe_key, self.embedder_id)

    @property
    def ref(self) -> UnitRef:
        return UnitRef(INDEX_STAGE, self.video_id, self.key)


@dataclass(frozen=True)
class IndexOutcome:
    """One index unit after this run: DONE (n_vectors written), SKIPPED (done before), BUSY, FAILED."""

    video_id: str
    describe_key: str
    status: Status
    n_vectors: int = 0
    error: str | None = None


def describe_units_of(store: Store) -> list[tuple[str, str]]:
    """(video_id, describe_key) of every descriptions unit whose file is there and whose catalog unit is done
    (a unit written without the catalog counts as done, as in the views)."""
    states = {(u.video_id, u.unit_key): u.state for u in store.catalog.units(stage="describe")}
    return [(vid, key) for vid, key in store.list_units("descriptions") if states.get((vid, key), "done") == "done"]


def plan_index(store: Store, described: Iterable[tuple[str, str]],
               embedder_id: str) -> tuple[list[IndexUnit], list[IndexOutcome]]:
    """(units to do, outcomes of units settled: done before with their file present, or failed for good).

    Cheap for a whole store: one catalog query and one folder listing; a unit the catalog records as done
    whose file is missing goes through `prior_status` (re-queued and redone)."""
    done = {(u.video_id, u.unit_key) for u in store.catalog.units(stage=INDEX_STAGE) if u.state == "done"}
    present = set(store.list_units(VECTORS))
    todo: list[IndexUnit] = []
    settled: list[IndexOutcome] = []
    for video_id, describe_key in dict.fromkeys(described):
        unit = IndexUnit(video_id, describe_key, embedder_id)
        if (video_id, unit.key) in done and (video_id, unit.key) in present:
            settled.append(IndexOutcome(video_id, describe_key, Status.SKIPPED))
            continue
        prior = prior_status(store, unit.ref)
        if prior is None:
            todo.append(unit)
        else:
            settled.append(IndexOutcome(video_id, describe_key, prior.status, error=prior.error))
    return todo, settled


@dataclass
class _Pending:
    unit: IndexUnit
    answers: pa.Table  # the unit's descriptions rows with a non-blank answer


@dataclass
class _Indexer:
    store: Store
    embedder: Embedder
    max_texts: int
    progress: Callable[[str], None] | None
    meter: Meter
    pending: list[_Pending] = field(default_factory=list)
    outcomes: list[IndexOutcome] = field(default_factory=list)
    n_vectors: int = 0
    reported: float = field(default_factory=time.monotonic)  # when the last progress line was printed

    def add(self, unit: IndexUnit) -> None:
        try:
            answers = _read_answers(self.store, unit)
        except StoreError as exc:
            record_failure(self.store, unit.ref, exc)
            self.outcomes.append(IndexOutcome(unit.video_id, unit.describe_key, Status.FAILED, error=error_text(exc)))
            return
        self.pending.append(_Pending(unit, answers))
        if sum(p.answers.num_rows for p in self.pending) >= self.max_texts:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        texts = [a for p in self.pending for a in p.answers.column("answer").to_pylist()]
        vectors = self.embedder.embed(texts) if texts else np.zeros((0, self.embedder.dim), np.float32)
        if vectors.shape != (len(texts), self.embedder.dim):
            raise StoreError(f"embedder {self.embedder.embedder_id} returned vectors of shape {vectors.shape} for "
                             f"{len(texts)} texts, not ({len(texts)}, {self.embedder.dim})")
        start = 0
        while self.pending:
            p = self.pending[0]
            n = p.answers.num_rows
            self._write(p, vectors[start : start + n])
            start += n
            self.pending.pop(0)
        now = time.monotonic()
        if self.progress and (now - self.reported >= REPORT_EVERY_S or self.meter.done >= self.meter.total):
            self.reported = now
            self.progress(f"{self.meter.line()}, {self.n_vectors} vector(s)")

    def _write(self, p: _Pending, vectors: np.ndarray) -> None:
        dim = self.embedder.dim
        flat = pa.array(np.ascontiguousarray(vectors, np.float32).reshape(-1), pa.float32())
        table = p.answers.drop_columns(["answer"]).append_column(
            "embedder_id", pa.array([self.embedder.embedder_id] * len(vectors), pa.string())
        ).append_column("dim", pa.array([dim] * len(vectors), pa.int32())).append_column(
            "vector", pa.FixedSizeListArray.from_arrays(flat, dim).cast(pa.list_(pa.float32())))
        self.store.write_unit(VECTORS, p.unit.video_id, p.unit.key, table)
        finish(self.store, p.unit.ref, len(vectors))
        self.n_vectors += len(vectors)
        self.meter.done += 1
        self.outcomes.append(IndexOutcome(p.unit.video_id, p.unit.describe_key, Status.DONE, n_vectors=len(vectors)))


def _read_answers(store: Store, unit: IndexUnit) -> pa.Table:
    """The rows of a descriptions unit that have something to embed (non-blank answers), in file order."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = store.unit_path("descriptions", unit.video_id, unit.describe_key)
    try:
        with store.fs.open(path, "rb") as fh:
            table = pq.read_table(fh, columns=_ANSWER_COLUMNS)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"descriptions unit {unit.describe_key} of video {unit.video_id[:12]} cannot be read: "
                         f"{exc}") from exc
    answers = table.column("answer")
    keep = pc.and_(pc.is_valid(answers), pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(answers)), 0))
    return table.filter(pc.fill_null(keep, False))


def index_units(store: Store, units: Sequence[IndexUnit], embedder: Embedder, worker_id: str, *,
                max_texts: int = 2048, lease_s: float = DEFAULT_LEASE_S,
                progress: Callable[[str], None] | None = None) -> list[IndexOutcome]:
    """Claim, embed and write `units` (all of `embedder`); returns one outcome per unit.

    A unit whose descriptions file cannot be read fails alone (retryable). Any other error (the embedder
    fails, Ctrl-C) marks every claimed, unwritten unit failed (retryable) and propagates: written units
    stay done, and the next run does the rest.
    """
    for unit in units:
        if unit.embedder_id != embedder.embedder_id:
            raise ValueError(f"unit {unit.key} is for embedder {unit.embedder_id}, not {embedder.embedder_id}")
    run = _Indexer(store, embedder, max(1, max_texts), progress, Meter("index", len(units), "units", every_s=0.0))
    try:
        for unit in units:
            if not claim_ref(store, unit.ref, worker_id, lease_s):
                run.outcomes.append(IndexOutcome(unit.video_id, unit.describe_key, Status.BUSY))
                continue
            run.add(unit)
        run.flush()
    except BaseException as exc:
        for p in run.pending:
            record_failure(store, p.unit.ref, exc)
        raise
    return run.outcomes


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
