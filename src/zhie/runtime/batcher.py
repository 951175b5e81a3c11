"""Dynamic micro-batching: concurrent calls for one model are grouped into one model call.

The queue owns its state alone. A batch closes at a character budget or an item cap; with
``max_wait_ms == 0`` (the default) nothing waits on purpose: whatever queued while the previous
batch ran forms the next one, so an idle server answers a lone request as fast as a direct call.
Items whose caller gave up are dropped before compute; a failed batch fails every waiter; a full
queue refuses at once (``Overloaded``) rather than letting latency grow without bound.

``concurrency`` batches may be in flight at once (ONNX Runtime releases the GIL). On a small CPU
two one-sentence calls side by side go further than one call of two sentences, so a queue is
shared out evenly over the free slots rather than poured into one batch.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


class Overloaded(Exception):
    """The queue is full: retry later."""


class DeadlineExceeded(Exception):
    """The request waited longer than its timeout."""


@dataclass
class BatchStats:
    items: int
    chars: int
    seconds: float
    queue_depth: int


@dataclass
class _Item:
    payload: Any
    future: asyncio.Future
    size: int


class MicroBatcher:
    def __init__(
        self,
        fn: Callable[[list[Any]], Sequence[Any]],
        *,
        max_batch_items: int = 64,
        max_batch_chars: int = 16384,
        max_wait_ms: float = 0.0,
        max_queue: int = 2048,
        timeout_s: float = 60.0,
        executor: Executor | None = None,
        on_batch: Callable[[BatchStats], None] | None = None,
        concurrency: int = 1,
        size_of: Callable[[Any], int] = len,
    ):
        if max_batch_items < 1 or max_batch_chars < 1 or max_queue < 1 or timeout_s <= 0 or max_wait_ms < 0 or concurrency < 1:
            raise ValueError("batcher limits must be positive")
        self.concurrency = concurrency
        self.size_of = size_of  # a payload's share of the character budget
        self.fn = fn
        self.max_batch_items = max_batch_items
        self.max_batch_chars = max_batch_chars
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.on_batch = on_batch
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(concurrency, thread_name_prefix="zhie-model")
        self._queue: deque[_Item] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._slots: asyncio.Semaphore | None = None
        self._inflight: set[asyncio.Task] = set()
        self._running: dict[asyncio.Task, list[_Item]] = {}  # the batch each in-flight task computes
        self._busy = 0

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._slots = asyncio.Semaphore(self.concurrency)
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for t in list(self._inflight):
            t.cancel()
        self.fail_waiting(Overloaded("server is shutting down"))
        if self._own_executor:
            self._executor.shutdown(wait=False)

    def fail_waiting(self, exc: Exception, running: bool = False) -> int:
        """Fail every queued item not yet handed to the model with ``exc``, and with ``running`` the
        waiters of the batches in flight too (their model calls finish, the results are dropped);
        returns how many were failed. A draining server uses this before its deadline."""
        items = [self._queue.popleft() for _ in range(len(self._queue))]
        if running:
            items += [it for batch in self._running.values() for it in batch]
        n = 0
        for it in items:
            if not it.future.done():
                it.future.set_exception(exc)
                n += 1
        return n

    async def submit(self, payloads: Sequence[Any]) -> list[Any]:
        """Results for ``payloads`` in order. Raises Overloaded or DeadlineExceeded."""
        if self._task is None:
            raise RuntimeError("batcher not started")
        if not payloads:
            return []
        if len(self._queue) + len(payloads) > self.max_queue:
            raise Overloaded(f"queue full ({len(self._queue)} waiting, limit {self.max_queue})")
        loop = asyncio.get_running_loop()
        items = [_Item(p, loop.create_future(), max(1, self.size_of(p))) for p in payloads]
        self._queue.extend(items)
        assert self._wake is not None
        self._wake.set()
        try:
            return list(await asyncio.wait_for(asyncio.gather(*(it.future for it in items)), self.timeout_s))
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"no result within {self.timeout_s:g} s") from None
        finally:
            for it in items:  # a caller that gave up leaves nothing to compute
                if not it.future.done():
                    it.future.cancel()

    def _take(self, max_items: int) -> list[_Item]:
        batch: list[_Item] = []
        chars = 0
        while self._queue and len(batch) < max_items:
            it = self._queue[0]
            if it.future.done():  # cancelled or timed out before compute
                self._queue.popleft()
                continue
            if batch and chars + it.size > self.max_batch_chars:
                break
            batch.append(self._queue.popleft())
            chars += it.size
        return batch

    async def _run(self) -> None:
        assert self._wake is not None and self._slots is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            if self.max_wait and len(self._queue) < self.max_batch_items:
                await asyncio.sleep(self.max_wait)
            await self._slots.acquire()
            # share what is queued over the free slots (this one included)
            free = self.concurrency - self._busy
            batch = self._take(min(self.max_batch_items, -(-len(self._queue) // free)))
            if not batch:
                self._slots.release()
                continue
            self._busy += 1
            task = asyncio.get_running_loop().create_task(self._compute(batch))
            self._inflight.add(task)
            self._running[task] = batch
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._inflight.discard(task)
        self._running.pop(task, None)

    async def _compute(self, batch: list[_Item]) -> None:
        assert self._slots is not None
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        try:
            try:
                results = await loop.run_in_executor(self._executor, self.fn, [it.payload for it in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"model returned {len(results)} results for {len(batch)} inputs")
            except Exception as e:  # noqa: BLE001 - every waiter hears about it
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(e)
                return
            for it, r in zip(batch, results):
                if not it.future.done():
                    it.future.set_result(r)
            if self.on_batch:
                self.on_batch(BatchStats(len(batch), sum(it.size for it in batch), time.perf_counter() - t0, len(self._queue)))
        finally:
            self._busy -= 1
            self._slots.release()
