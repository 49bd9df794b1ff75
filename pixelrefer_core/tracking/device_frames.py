"""Frames on the model's device: resizing and normalising in one batched step, and a bounded prefetcher.

`frames_to_tensor` turns RGB uint8 frames into the [N, 3, S, S] float32 input SAM 2 / SAM 3 expect: the
uint8 pixels go to the device first (4x less to copy than floats), then one bilinear, antialiased resize
of the whole batch and (x / 255 - mean) / std. Each frame is resized on its own inside the batch, so a
frame gives the same tensor whichever batch it is in.

`Prefetcher` prepares the next chunk's tensor on a background thread while the current chunk is being
processed (decode and host-to-device copy overlapped with compute). It holds at most `depth` prepared
chunks, so memory stays bounded; on CUDA the copy runs on its own stream and the consumer waits for it.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np


def frames_to_tensor(
    frames: Sequence[np.ndarray], size: int, mean: Sequence[float], std: Sequence[float], device: Any,
    pin: bool = False,
) -> Any:
    """[N, 3, size, size] float32 on `device` from RGB HxWx3 uint8 frames (all of one shape).
    `pin`: copy through page-locked memory (an asynchronous host-to-GPU transfer)."""
    import torch
    import torch.nn.functional as F

    host = torch.from_numpy(np.ascontiguousarray(np.stack(frames)))
    batch = (host.pin_memory() if pin else host).to(device, non_blocking=pin)
    x = batch.permute(0, 3, 1, 2).float() / 255.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    m = torch.tensor(mean, device=x.device, dtype=x.dtype)[None, :, None, None]
    s = torch.tensor(std, device=x.device, dtype=x.dtype)[None, :, None, None]
    return (x - m) / s


class DeviceFrameCache:
    """Device tensors of frames prepared ahead (by `put`, e.g. on the prefetch thread), found again by
    `tensor(frames)` from the frame arrays themselves. Entries are keyed by array identity, checked through
    a weak reference (a recycled id never matches), and dropped as soon as their frame is garbage: the cache
    holds no more than the frames someone still holds (the tracker's chunk and the prefetched ones), and
    never more than `capacity`. Frames not found are prepared on the spot. Thread-safe."""

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float], device: Any, capacity: int = 32):
        self.size, self.mean, self.std, self.device, self.capacity = size, tuple(mean), tuple(std), device, capacity
        self._lock = threading.RLock()  # re-entrant: a weakref callback may fire while the lock is held
        self._items: OrderedDict[int, tuple[weakref.ref[np.ndarray], Any, Any]] = OrderedDict()
        self._stream: Any = None
        self.hits = 0
        self.misses = 0

    def put(self, frames: Sequence[np.ndarray]) -> None:
        """Prepare `frames` now. On CUDA the copy and resize run on a side stream (the caller is a prefetch
        thread) and the consumer's stream waits for them before use."""
        if not frames or self.capacity <= 0:
            return
        import torch

        event = None
        if torch.device(self.device).type == "cuda":
            if self._stream is None:
                self._stream = torch.cuda.Stream(device=self.device)
            with torch.cuda.stream(self._stream):
                t = frames_to_tensor(frames, self.size, self.mean, self.std, self.device, pin=True)
                parts = [x.clone() for x in t]  # own storage each: a dropped frame frees its memory
                event = torch.cuda.Event()
                event.record(self._stream)
        else:
            t = frames_to_tensor(frames, self.size, self.mean, self.std, self.device)
            parts = [x.clone() for x in t]
        with self._lock:
            for f, x in zip(frames, parts, strict=True):
                self._items[id(f)] = (weakref.ref(f, self._forget(id(f))), x, event)
                self._items.move_to_end(id(f))
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def _forget(self, key: int) -> Callable[[weakref.ref[np.ndarray]], None]:
        def drop(ref: weakref.ref[np.ndarray]) -> None:
            with self._lock:
                entry = self._items.get(key)
                if entry is not None and entry[0] is ref:
                    del self._items[key]

        return drop

    def __len__(self) -> int:
        return len(self._items)

    def tensor(self, frames: Sequence[np.ndarray]) -> Any:
        """[N, 3, S, S] for `frames`, from the cache where prepared, else computed now."""
        import torch

        found: dict[int, Any] = {}
        with self._lock:
            for i, f in enumerate(frames):
                entry = self._items.get(id(f))
                if entry is not None and entry[0]() is f:
                    found[i] = entry[1]
                    if entry[2] is not None:  # prepared on the side stream: wait for it
                        torch.cuda.current_stream(self.device).wait_event(entry[2])
        self.hits += len(found)
        self.misses += len(frames) - len(found)
        if len(found) == len(frames):
            return torch.stack([found[i] for i in range(len(frames))])
        missing = [i for i in range(len(frames)) if i not in found]
        fresh = frames_to_tensor([frames[i] for i in missing], self.size, self.mean, self.std, self.device)
        found.update(zip(missing, fresh, strict=True))
        return torch.stack([found[i] for i in range(len(frames))])


class Prefetcher:
    """Iterate `prepare(item)` over `items` with up to `depth` results prepared ahead on a thread.

    Exceptions raised by `prepare` (or by the items iterator) are re-raised in the consumer. Closing
    (or leaving a `with` block) stops the worker.
    """

    _DONE = object()

    def __init__(self, items: Iterator[Any], prepare: Callable[[Any], Any], depth: int = 1):
        if depth < 1:
            raise ValueError(f"prefetch depth must be >= 1, got {depth}")
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items, prepare), daemon=True, name="prefetch")
        self._thread.start()

    def _put(self, value: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items: Iterator[Any], prepare: Callable[[Any], Any]) -> None:
        try:
            for item in items:
                if not self._put((item, prepare(item), None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((None, None, exc))
            return
        self._put(self._DONE)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        while True:
            got = self._queue.get()
            if got is self._DONE:
                return
            item, prepared, exc = got
            if exc is not None:
                raise exc
            yield item, prepared

    def close(self) -> None:
        self._stop.set()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._thread.join(timeout=5)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DeviceFrameCache", "Prefetcher", "frames_to_tensor"]
