"""The describe engine's fast path: continuous batching over a static KV cache, the vision work of the next
rows overlapped with decoding, the vision encoder's packed fast path, CUDA graphs.

`run_fast(engine, items, plans, order)` cuts `order` into chunks of `engine.batch_size` items; each chunk's
rows come from the planner exactly as in today's path (one packed vision pass per chunk, shared prefixes),
inside `vision_fast_path` (varlen/flex attention, fused and compiled layers: see
`pixelrefer_core.model.vision_attention`). A `ContinuousDecoder` with `decode_slots` slots decodes them;
a finished row's slot takes the next waiting row at once. With `overlap` a producer thread builds the next
chunks' rows (on its own CUDA stream) while the decoder runs, at most `decode_slots + batch_size` rows
ahead; without it the decoder pulls the next chunk when slots free up.

Choices on CUDA (`FastPathOptions` fields left None): decode slots from free GPU memory (`choose_decode_slots`,
capped at `max_slots` and the number of items), CUDA graphs, compiled vision layers, overlap. On CPU the
same code runs eagerly with `decode_slots = batch_size` and no thread (tests: same tokens as today's path).
Out of memory: the chunk size and the slots are halved (sticky) and the items not yet answered retried;
at one item and one slot it is raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from pixelrefer_core.errors import PixelReferError
from pixelrefer_core.model.vision_attention import VisionFastPath, vision_fast_path

from .continuous import ContinuousDecoder, DecodeRequest, PullSource, RowQueue, RowSource
from .decoding import greedy_settings
from .generation import decode_answer
from .items import DescribeItem, DescribeResult, EngineStats
from .slot_decoding import slot_bytes

if TYPE_CHECKING:
    from .engine import DescribeEngine, Plan

__all__ = ["FastPathOptions", "choose_decode_slots", "free_device_bytes", "run_fast"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FastPathOptions:
    """Knobs of the fast path; None = chosen per device (CUDA: memory-sized slots, graphs, compile, overlap;
    CPU: `batch_size` slots, none of the others).

    decode_slots: rows decoded at once; cuda_graphs: replay the decode step as a CUDA graph;
    compile_vision: `torch.compile` the vision layers; vision_attention: see `VisionFastPath`; overlap:
    build the next rows on a thread while decoding; sync_every: decode steps between stop checks;
    max_prefill_tokens: padded prompt tokens per prefill pass; max_slots / memory_fraction: the cap and the
    share of free GPU memory `choose_decode_slots` uses; strict: raise on a failure of the fast path
    instead of logging it and answering the remaining items through today's path (benchmarks use strict);
    timed: synchronise around each phase so `EngineStats` times device work (benchmarks; costs overlap).
    """

    decode_slots: int | None = None
    cuda_graphs: bool | None = None
    compile_vision: bool | None = None
    vision_attention: str = "auto"
    overlap: bool | None = None
    sync_every: int = 8
    max_prefill_tokens: int = 16384
    max_slots: int = 64
    memory_fraction: float = 0.5
    strict: bool = False
    timed: bool = False


def free_device_bytes(device: torch.device) -> int:
    """Bytes the caching allocator can still hand out on `device`: free device memory plus what it holds
    reserved but unused."""
    free, _ = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def choose_decode_slots(
    config: Any,
    capacity: int,
    dtype: torch.dtype,
    max_new_tokens: int,
    free_bytes: int,
    *,
    fraction: float = 0.5,
    max_slots: int = 64,
    reserve_bytes: int = 0,
) -> int:
    """Decode slots that fit in `fraction` of `free_bytes - reserve_bytes` (the vision pass and the prefill
    activations are reserved by the caller), at least 1, at most `max_slots`."""
    per_slot = slot_bytes(config, capacity, dtype, max_new_tokens)
    budget = max(0, free_bytes - reserve_bytes) * fraction
    return int(max(1, min(max_slots, budget // per_slot)))


def _prefill_reserve(config: Any, tokens: int, dtype: torch.dtype) -> int:
    """Activation bytes of one prefill pass of `tokens` positions (hidden states, the MLP's three
    intermediate tensors, q/k/v), doubled for the allocator's slack."""
    elem = torch.empty((), dtype=dtype).element_size()
    return 2 * tokens * (6 * config.hidden_size + 3 * config.intermediate_size) * elem


@dataclass
class _Resolved:
    slots: int
    graphs: bool
    overlap: bool
    vision: VisionFastPath


def _resolve(engine: DescribeEngine, n_items: int, capacity: int) -> _Resolved:
    opts: FastPathOptions = engine.fast_options
    model = engine.model
    cuda = torch.device(model.device).type == "cuda"
    if engine.decode_slots is not None:
        slots = engine.decode_slots
    elif opts.decode_slots is not None:
        slots = opts.decode_slots
    elif cuda:
        reserve = _prefill_reserve(model.config, opts.max_prefill_tokens, model.dtype)
        slots = choose_decode_slots(
            model.config, capacity, model.dtype, engine.max_new_tokens, free_device_bytes(model.device),
            fraction=opts.memory_fraction, max_slots=opts.max_slots, reserve_bytes=reserve,
        )
    else:
        slots = engine.batch_size
    slots = max(1, min(slots, n_items))
    compile_vision = cuda if opts.compile_vision is None else opts.compile_vision
    return _Resolved(
        slots=slots,
        graphs=cuda if opts.cuda_graphs is None else opts.cuda_graphs,
        overlap=cuda if opts.overlap is None else opts.overlap,
        vision=VisionFastPath(
            attention=opts.vision_attention, fused=True, compile=compile_vision, strict=opts.strict
        ),
    )


def _capacity_hint(plans: Sequence[Plan], max_new_tokens: int) -> int:
    """Positions per slot: Lite prompts are known before any model work; the full model's (vision tokens
    after compression) are not, so the cache starts at 1024 and grows on a longer row."""
    lengths = [int(p.input_ids.numel()) for p in plans if hasattr(p, "input_ids")]
    longest = max(lengths) if len(lengths) == len(plans) and lengths else 1024
    return -(-(longest + max_new_tokens + 1) // 64) * 64


class _Chunks:
    """Builds the rows of one chunk of items after another (the planner's `rows`, under the vision fast
    path) and records what they cost."""

    def __init__(self, engine: DescribeEngine, items: Sequence[DescribeItem], plans: Sequence[Plan],
                 order: Sequence[int], vision: VisionFastPath):
        self.engine, self.items, self.plans, self.vision = engine, items, plans, vision
        size = engine.batch_size
        self.chunks = [list(order[i : i + size]) for i in range(0, len(order), size)]
        self.stats: list[EngineStats] = []
        self.seconds = 0.0

    def build(self, chunk: list[int]) -> list[DecodeRequest]:
        engine = self.engine
        t0 = time.perf_counter()
        stats = EngineStats()
        stats.vision.timed = engine.fast_options.timed
        with torch.inference_mode(), vision_fast_path(self.vision):
            chunk_items = [self.items[i] for i in chunk]
            chunk_plans = [self.plans[i] for i in chunk]
            rows = engine.planner.rows(chunk_items, chunk_plans, stats)  # type: ignore[arg-type]
            engine.planner.finish(chunk_plans)  # type: ignore[arg-type]
            ready = None
            if torch.device(engine.model.device).type == "cuda":
                ready = torch.cuda.Event()
                ready.record(torch.cuda.current_stream(engine.model.device))
        self.stats.append(stats)
        self.seconds += time.perf_counter() - t0
        return [DecodeRequest(key=i, row=row, ready=ready, t0=t0) for i, row in zip(chunk, rows, strict=True)]

    def pulled(self) -> Iterator[list[DecodeRequest]]:
        for chunk in self.chunks:
            yield self.build(chunk)

    def produce(self, queue: RowQueue, device: torch.device) -> None:
        """Thread body: every chunk's rows into `queue`, on a side stream on CUDA."""
        stream = torch.cuda.Stream(device=device) if device.type == "cuda" else None
        try:
            for chunk in self.chunks:
                if stream is not None:
                    with torch.cuda.stream(stream):
                        rows = self.build(chunk)
                else:
                    rows = self.build(chunk)
                if not queue.put(rows):
                    break
        except BaseException as err:  # noqa: BLE001 - handed to the decoding thread, raised there
            queue.close(err)
            return
        queue.close()


def fast_pass(engine: DescribeEngine, items: Sequence[DescribeItem], plans: Sequence[Plan],
              order: Sequence[int]) -> Iterator[tuple[int, DescribeResult]]:
    """(item index, result) for every item of `order`, as they finish. Fills `engine.last_stats`."""
    model = engine.model
    device = torch.device(model.device)
    settings = greedy_settings(model, engine.tokenizer, engine.max_new_tokens, engine.repetition_penalty)
    capacity = _capacity_hint([plans[i] for i in order], settings.max_new_tokens)
    res = _resolve(engine, len(order), capacity)
    engine.decode_slots_used = res.slots
    decoder = ContinuousDecoder(
        model, settings, res.slots, capacity, cuda_graphs=res.graphs,
        sync_every=engine.fast_options.sync_every, max_prefill_tokens=engine.fast_options.max_prefill_tokens,
        timed=engine.fast_options.timed,
    )
    chunks = _Chunks(engine, items, plans, order, res.vision)
    queue: RowQueue | None = None
    thread: threading.Thread | None = None
    source: RowSource
    if res.overlap:
        queue = RowQueue(limit=res.slots + engine.batch_size)
        thread = threading.Thread(target=chunks.produce, args=(queue, device), daemon=True, name="describe-rows")
        thread.start()
        source = queue
    else:
        source = PullSource(chunks.pulled())
    t_start = time.perf_counter()
    generated = 0
    try:
        for req, ids in decoder.run(source):
            generated += len(ids)
            index = int(req.key)  # type: ignore[call-overload]
            latency = (time.perf_counter() - (req.t0 or t_start)) * 1000.0
            yield index, DescribeResult(
                key=items[index].key, token_ids=ids, text=decode_answer(engine.tokenizer, ids),
                n_tokens=len(ids), latency_ms=latency,
            )
    finally:
        if queue is not None:
            queue.cancel()
        if thread is not None:
            thread.join()
        for s in chunks.stats:
            s.batches += 1
            engine.last_stats.add(s)
        st = engine.last_stats
        st.generated_tokens += generated
        st.decode_steps += decoder.stats.decode_steps
        st.refills += decoder.stats.refills
        st.decode_slots = max(st.decode_slots, res.slots)
        st.cuda_graphs = st.cuda_graphs or decoder.stats.graph
        st.vision_seconds += chunks.seconds
        st.prefill_seconds += decoder.stats.prefill_seconds
        st.decode_seconds += decoder.stats.decode_seconds
        st.fast_path = True


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError)


def run_fast(engine: DescribeEngine, items: Sequence[DescribeItem], plans: Sequence[Plan],
             order: Sequence[int]) -> list[DescribeResult]:
    """Every item's result, in item order, through `engine._fast_pass` with the OOM back-off."""
    results: list[DescribeResult | None] = [None] * len(items)
    remaining = list(order)
    done = 0
    while remaining:
        try:
            for index, result in engine._fast_pass(items, plans, remaining):
                results[index] = result
                done += 1
                engine.last_stats.items += 1
                if engine.progress is not None:
                    engine.progress(done, len(items))
            remaining = []
        except Exception as err:
            remaining = [i for i in remaining if results[i] is None]
            engine.planner.start([plans[i] for i in remaining])  # type: ignore[misc]
            if not _is_oom(err):
                if isinstance(err, PixelReferError) or engine.fast_options.strict:
                    raise
                # A fast path that never ran on this machine must not cost a run its answers: log it,
                # stop using it in this engine, answer the rest through the standard path.
                logger.exception(
                    "the describe fast path failed; answering the %d remaining items through the standard path",
                    len(remaining),
                )
                engine.fast_path = False
                engine._run_standard(items, plans, remaining, results)
                return results  # type: ignore[return-value]
            chunk, slots = engine.batch_size, engine.decode_slots_used
            if chunk == 1 and slots <= 1:
                raise
            engine.batch_size = max(1, chunk // 2)
            engine.decode_slots = max(1, slots // 2)
            logger.warning(
                "out of memory with %d items per vision pass and %d decode slots; retrying with %d and %d",
                chunk, slots, engine.batch_size, engine.decode_slots,
            )
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return results  # type: ignore[return-value]
