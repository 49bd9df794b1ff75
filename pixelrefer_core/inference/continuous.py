"""Continuous batching: greedy decoding over a fixed set of cache slots, a finished row's slot refilled with
the next waiting row while the others keep decoding, so a batch never waits on its longest answer.

Rows arrive through a `RowSource` (`take(n, block)`): a `RowQueue` fed by a producer thread (the engine's
vision work for the next rows, overlapped with decoding) or a `PullSource` over an iterator (everything in
one thread). Per loop: harvest the rows that stopped (a stop id, or `max_new_tokens`), prefill waiting
rows into the free slots (their first token), then decode up to `sync_every` steps for every slot at
once, and read back which rows stopped (the only host-device sync of the loop).

The decoding rules are `decoding.greedy_decode`'s: the repetition penalty over a row's own generated tokens
(a per-slot mask of the tokens seen, which is what transformers' `RepetitionPenaltyLogitsProcessor`
computes from the id list), the checkpoint's suppressed tokens, argmax, stop at any stop id (excluded from
the answer), at most `max_new_tokens`. A row that stopped between two syncs decodes a few more tokens that
are cut at its stop id. Each row's computation is its own (see `slot_decoding`), so answers do not depend on
which rows share the slots (tested token for token against `greedy_decode`, fp32 on CPU).

On CUDA the decode step (embedding, every layer, the logits processors, argmax and the state update) is
captured once into a CUDA graph and replayed: one launch per step instead of hundreds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from .decoding import DecodeRow, GreedySettings, trim_at_eos
from .slot_decoding import SlotKVCache, SlotLLM

__all__ = ["ContinuousDecoder", "DecodeRequest", "DecoderStats", "PullSource", "RowQueue", "RowSource"]

logger = logging.getLogger(__name__)


@dataclass
class DecodeRequest:
    """key: returned with the row's answer; row: what to decode; ready: a CUDA event the row's tensors
    were finished under (another stream made them), waited on before use; t0: when its work began."""

    key: Hashable
    row: DecodeRow
    ready: Any = None
    t0: float = 0.0

    @property
    def length(self) -> int:
        return self.row.prefix_length + int(self.row.embeds.shape[0])


class RowSource(Protocol):
    def take(self, n: int, block: bool) -> list[DecodeRequest] | None:
        """Up to n waiting rows ([] when none is ready and not `block`); None when no row will ever come."""
        ...


class PullSource:
    """Rows from an iterator of row lists, pulled (computed) when the decoder asks for them."""

    def __init__(self, batches: Iterator[list[DecodeRequest]]):
        self._batches = batches
        self._waiting: deque[DecodeRequest] = deque()
        self._done = False

    def take(self, n: int, block: bool) -> list[DecodeRequest] | None:
        while len(self._waiting) < n and not self._done:  # fill every free slot
            try:
                self._waiting.extend(next(self._batches))
            except StopIteration:
                self._done = True
        if not self._waiting:
            return None
        return [self._waiting.popleft() for _ in range(min(n, len(self._waiting)))]


class RowQueue:
    """Rows put by a producer thread and taken by the decoder; `close(error)` ends it (the error, if any,
    is raised in the decoder). `limit` bounds the rows waiting (the producer blocks in `put`)."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self._rows: deque[DecodeRequest] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self.cancelled = False

    def put(self, rows: list[DecodeRequest]) -> bool:
        """Add rows (waits while `limit` rows are waiting); False when the consumer has cancelled."""
        with self._cv:
            while len(self._rows) >= self.limit and not self.cancelled:
                self._cv.wait(0.1)
            if self.cancelled:
                return False
            self._rows.extend(rows)
            self._cv.notify_all()
            return True

    def close(self, error: BaseException | None = None) -> None:
        with self._cv:
            self._closed, self._error = True, error
            self._cv.notify_all()

    def cancel(self) -> None:
        with self._cv:
            self.cancelled = True
            self._rows.clear()
            self._cv.notify_all()

    def take(self, n: int, block: bool) -> list[DecodeRequest] | None:
        with self._cv:
            while block and not self._rows and not self._closed:
                self._cv.wait(0.1)
            if self._error is not None:
                raise self._error
            if not self._rows:
                return None if self._closed else []
            out = [self._rows.popleft() for _ in range(min(n, len(self._rows)))]
            self._cv.notify_all()
            return out


@dataclass
class DecoderStats:
    """decode_steps: decode passes over all slots; prefill_calls: prefill passes; refills: rows started while
    other rows were decoding; max_active: most rows decoding at once; graph: the step ran as a CUDA graph;
    prefill_seconds / decode_seconds: wall time of the prefill passes and of the decode steps (device
    work included only when the decoder is `timed`; otherwise the time to launch it)."""

    decode_steps: int = 0
    prefill_calls: int = 0
    refills: int = 0
    max_active: int = 0
    graph: bool = False
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0


class ContinuousDecoder:
    """Greedy decoding of rows in `slots` cache slots with refills (see the module docstring).

    capacity: positions per slot including the scratch index (grown when a longer row comes; on CUDA the
    graph is then captured again); cuda_graphs: capture the decode step (CUDA only); sync_every: decode
    steps between reads of the stop flags; max_prefill_tokens: padded prompt tokens per prefill pass;
    timed: synchronise after every prefill and decode burst so `stats` times device work (benchmarks).
    """

    def __init__(
        self,
        model: Any,
        settings: GreedySettings,
        slots: int,
        capacity: int,
        *,
        cuda_graphs: bool = False,
        sync_every: int = 8,
        max_prefill_tokens: int = 16384,
        timed: bool = False,
    ):
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.model = model
        self.settings = settings
        self.llm = SlotLLM(model)
        self.device = torch.device(model.device)
        self.dtype = model.dtype
        self.slots = slots
        self.sync_every = max(1, sync_every)
        self.max_prefill_tokens = max(1, max_prefill_tokens)
        self.use_graphs = cuda_graphs and self.device.type == "cuda"
        self.timed = timed and self.device.type == "cuda"
        self.cache = SlotKVCache(model.config, slots, max(2, capacity), self.dtype, self.device)
        vocab = int(model.config.vocab_size)
        dev = self.device
        self.max_new = max(1, settings.max_new_tokens)
        self.tokens = torch.zeros(slots, dtype=torch.long, device=dev)  # next decode step's input token
        self.positions = torch.zeros(slots, dtype=torch.long, device=dev)  # ... and its position
        self.step = torch.zeros(slots, dtype=torch.long, device=dev)  # where the next token is written
        self.generated = torch.zeros(slots, self.max_new, dtype=torch.long, device=dev)
        self.seen = torch.zeros(slots, vocab, dtype=torch.bool, device=dev)
        self.finished = torch.ones(slots, dtype=torch.bool, device=dev)
        self.stop = torch.tensor(settings.stop_ids, dtype=torch.long, device=dev)
        self.suppress: torch.Tensor | None = None
        if settings.suppress_tokens:
            self.suppress = torch.zeros(vocab, dtype=torch.bool, device=dev)
            self.suppress[list(settings.suppress_tokens)] = True
        self.all_slots = torch.arange(slots, device=dev)
        self.graph: Any = None
        self.stats = DecoderStats()

    # ---- device-side pieces ------------------------------------------------------------------------
    def _scores(self, logits: torch.Tensor, seen: torch.Tensor | None) -> torch.Tensor:
        s = logits
        p = self.settings.repetition_penalty
        if p != 1.0 and seen is not None:
            s = torch.where(seen, torch.where(s < 0, s * p, s / p), s)
        if self.suppress is not None:
            s = s.masked_fill(self.suppress, float("-inf"))
        return s

    def _is_stop(self, tok: torch.Tensor) -> torch.Tensor:
        return (tok[:, None] == self.stop[None, :]).any(dim=-1)

    def _decode_once(self) -> None:
        """One decode step for every slot; only in-place updates of persistent tensors (graph-safe)."""
        x = self.llm.embed(self.tokens)[:, None]
        zero = torch.zeros_like(self.tokens)
        logits = self.llm.forward(self.cache, self.all_slots, x, self.positions[:, None], zero, whole=True)
        tok = self._scores(logits, self.seen).argmax(dim=-1)
        self.generated[self.all_slots, self.step.clamp(max=self.max_new - 1)] = tok
        self.seen[self.all_slots, tok] = True
        self.finished |= self._is_stop(tok)
        self.tokens.copy_(tok)
        self.positions.add_(1).clamp_(max=self.cache.scratch)
        self.step.add_(1).clamp_(max=self.max_new)

    def _state(self) -> list[torch.Tensor]:
        return [self.tokens, self.positions, self.step, self.generated, self.seen, self.finished]

    def _capture(self) -> None:
        """Capture `_decode_once` into a CUDA graph (warm-up on a side stream; the small state is restored,
        and the cache positions the warm-up wrote are rewritten by the next real step before being read)."""
        saved = [t.clone() for t in self._state()]
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(2):
                self._decode_once()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self._decode_once()
        for t, s in zip(self._state(), saved, strict=True):
            t.copy_(s)
        self.graph = graph
        self.stats.graph = True

    def _decode(self, steps: int) -> None:
        if self.use_graphs and self.graph is None:
            try:
                self._capture()
            except RuntimeError as err:  # capture is an optimisation: decode eagerly rather than fail
                logger.warning("CUDA graph capture of the decode step failed (%s); decoding eagerly", err)
                self.use_graphs = False
        for _ in range(steps):
            if self.graph is not None:
                self.graph.replay()
            else:
                self._decode_once()
        self.stats.decode_steps += steps

    def _ensure_capacity(self, needed: int) -> None:
        if needed <= self.cache.capacity:
            return
        capacity = -(-int(needed * 1.25) // 64) * 64
        logger.info("slot decoder: growing the cache from %d to %d positions", self.cache.capacity, capacity)
        self.cache = self.cache.grown(capacity)
        self.graph = None  # the captured graph holds the old cache

    def _prefill(self, reqs: list[DecodeRequest], slots: list[int]) -> None:
        """Prefill waiting rows into free slots (padded passes of at most `max_prefill_tokens`) and take
        each row's first token."""
        self._ensure_capacity(max(r.length for r in reqs) + self.max_new + 1)
        stream = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None
        start = 0
        while start < len(reqs):
            end, width = start, 0
            while end < len(reqs):
                w = max(width, int(reqs[end].row.embeds.shape[0]))
                if end > start and w * (end - start + 1) > self.max_prefill_tokens:
                    break
                width, end = w, end + 1
            self._prefill_pass(reqs[start:end], slots[start:end], width, stream)
            start = end

    def _prefill_pass(self, reqs: list[DecodeRequest], slots: list[int], width: int, stream: Any) -> None:
        n, dev = len(reqs), self.device
        dim = int(reqs[0].row.embeds.shape[1])
        x = torch.zeros(n, width, dim, dtype=self.dtype, device=dev)
        pos = torch.full((n, width), self.cache.scratch, dtype=torch.long, device=dev)
        last = torch.zeros(n, dtype=torch.long, device=dev)
        ends = []
        for r, (req, slot) in enumerate(zip(reqs, slots, strict=True)):
            if req.ready is not None and stream is not None:
                stream.wait_event(req.ready)
            row = req.row
            s, p = int(row.embeds.shape[0]), row.prefix_length
            embeds = row.embeds
            if stream is not None:
                embeds.record_stream(stream)
            x[r, :s] = embeds.to(dev, self.dtype)
            pos[r, :s] = torch.arange(p, p + s, device=dev)
            last[r] = s - 1
            if row.prefix is not None:
                if stream is not None:
                    for k, v in row.prefix.layers:
                        k.record_stream(stream)
                        v.record_stream(stream)
                self.cache.load_prefix(slot, row.prefix)
            ends.append(p + s)
        idx = torch.tensor(slots, dtype=torch.long, device=dev)
        logits = self.llm.forward(self.cache, idx, x, pos, last)
        tok = self._scores(logits, None).argmax(dim=-1)
        self.seen[idx] = False
        self.seen[idx, tok] = True
        self.generated[idx, 0] = tok
        self.tokens[idx] = tok
        self.positions[idx] = torch.tensor(ends, dtype=torch.long, device=dev)
        self.step[idx] = 1
        self.finished[idx] = self._is_stop(tok)
        self.stats.prefill_calls += 1

    # ---- the loop --------------------------------------------------------------------------------------
    def run(self, source: RowSource) -> Iterator[tuple[DecodeRequest, list[int]]]:
        """Decode every row `source` gives; yields (request, new token ids without the stop id) as rows
        finish (not in input order)."""
        active: dict[int, tuple[DecodeRequest, int]] = {}  # slot -> (request, tokens generated so far)
        closed = False
        while True:
            if active:
                yield from self._harvest(active)
            free = [s for s in range(self.slots) if s not in active]
            reqs: list[DecodeRequest] | None = []
            if free and not closed:
                reqs = source.take(len(free), block=not active)
                if reqs is None:
                    closed, reqs = True, []
            if reqs:
                if active:
                    self.stats.refills += len(reqs)
                taken = free[: len(reqs)]
                t0 = time.perf_counter()
                self._prefill(reqs, taken)
                self._sync_if_timed()
                self.stats.prefill_seconds += time.perf_counter() - t0
                for slot, req in zip(taken, reqs, strict=True):
                    active[slot] = (req, 1)
            if not active:
                if closed:
                    return
                continue
            self.stats.max_active = max(self.stats.max_active, len(active))
            k = min(self.sync_every, min(self.max_new - n for _, n in active.values()))
            if k <= 0:
                continue  # a row is already complete: harvest first
            t0 = time.perf_counter()
            self._decode(k)
            self._sync_if_timed()
            self.stats.decode_seconds += time.perf_counter() - t0
            for slot, (req, n) in active.items():
                active[slot] = (req, n + k)

    def _sync_if_timed(self) -> None:
        if self.timed:
            torch.cuda.synchronize(self.device)

    def _harvest(self, active: dict[int, tuple[DecodeRequest, int]]) -> Iterator[tuple[DecodeRequest, list[int]]]:
        finished = self.finished.tolist()  # the loop's sync point
        done = [s for s, (_, n) in active.items() if finished[s] or n >= self.max_new]
        if not done:
            return
        rows = self.generated[torch.tensor(done, device=self.device)].tolist()
        for slot, ids in zip(done, rows, strict=True):
            req, n = active.pop(slot)
            yield req, trim_at_eos(ids[:n], self.settings.stop_ids)
