"""The micro-batcher on its own, without a server (LitServe-style collation tests)."""

import asyncio
import threading
import time

import pytest

from zhie.runtime.batcher import DeadlineExceeded, MicroBatcher, Overloaded


class SlowModel:
    def __init__(self, delay=0.05, fail_on=None):
        self.delay, self.fail_on, self.batches = delay, fail_on, []
        self.lock = threading.Lock()

    def __call__(self, texts):
        with self.lock:
            self.batches.append(list(texts))
        if self.fail_on and self.fail_on in texts:
            raise ValueError("model failed")
        time.sleep(self.delay)
        return [t.upper() for t in texts]


def run(coro):
    return asyncio.run(coro)


def test_batcher_lone_request_runs_alone_and_at_once():
    async def main():
        m = SlowModel(delay=0)
        b = MicroBatcher(m)
        b.start()
        t0 = time.perf_counter()
        assert await b.submit(["a"]) == ["A"]
        await b.stop()
        return time.perf_counter() - t0, m.batches

    elapsed, batches = run(main())
    assert batches == [["a"]]
    assert elapsed < 0.5  # no deliberate wait when idle (generous bound: only catches a sleeping batcher)


def test_batcher_groups_concurrent_requests_and_keeps_order():
    async def main():
        m = SlowModel(delay=0.05)
        b = MicroBatcher(m, max_batch_items=64)
        b.start()
        results = await asyncio.gather(*(b.submit([f"r{i}a", f"r{i}b"]) for i in range(10)))
        await b.stop()
        return results, m.batches

    results, batches = run(main())
    assert results == [[f"R{i}A", f"R{i}B"] for i in range(10)]
    assert len(batches) < 10  # requests that queued while a batch ran were grouped
    assert max(len(x) for x in batches) > 2


def test_batcher_respects_character_budget():
    async def main():
        m = SlowModel(delay=0.02)
        b = MicroBatcher(m, max_batch_chars=10)
        b.start()
        await asyncio.gather(*(b.submit(["xxxx"]) for _ in range(9)))
        await b.stop()
        return m.batches

    for batch in run(main()):
        assert sum(len(t) for t in batch) <= 10 or len(batch) == 1


def test_batcher_full_queue_refuses_at_once():
    async def main():
        m = SlowModel(delay=0.2)
        b = MicroBatcher(m, max_queue=3)
        b.start()
        first = asyncio.ensure_future(b.submit(["a"]))
        await asyncio.sleep(0.05)  # "a" is running; the queue is empty again
        second = asyncio.ensure_future(b.submit(["b", "c", "d"]))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await b.submit(["e"])
        assert await first == ["A"] and await second == ["B", "C", "D"]
        await b.stop()

    run(main())


def test_batcher_timeout_and_abandoned_items_are_not_computed():
    async def main():
        m = SlowModel(delay=0.3)
        b = MicroBatcher(m, timeout_s=0.1)
        b.start()
        with pytest.raises(DeadlineExceeded):
            await b.submit(["slow"])  # runs, but the caller stops waiting
        with pytest.raises(DeadlineExceeded):
            await b.submit(["abandoned"])  # queued behind "slow", given up before compute
        await asyncio.sleep(0.5)
        await b.stop()
        return m.batches

    batches = run(main())
    assert ["abandoned"] not in batches


def test_batcher_failure_reaches_every_waiter_and_serving_goes_on():
    async def main():
        m = SlowModel(delay=0.05, fail_on="bad")
        b = MicroBatcher(m)
        b.start()
        blocker = asyncio.ensure_future(b.submit(["first"]))
        await asyncio.sleep(0.01)
        r = await asyncio.gather(b.submit(["bad"]), b.submit(["ok"]), return_exceptions=True)
        await blocker
        after = await b.submit(["later"])
        await b.stop()
        return r, after

    (r1, r2), after = run(main())
    assert isinstance(r1, ValueError)
    assert isinstance(r2, ValueError) or r2 == ["OK"]  # same batch as the failure, or a later one
    assert after == ["LATER"]


def test_batcher_rejects_bad_limits():
    with pytest.raises(ValueError):
        MicroBatcher(lambda x: x, max_batch_items=0)


def test_batcher_runs_batches_side_by_side_and_shares_the_queue_out():
    class Overlap(SlowModel):
        def __init__(self):
            super().__init__(delay=0.1)
            self.running, self.most = 0, 0

        def __call__(self, texts):
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                return super().__call__(texts)
            finally:
                with self.lock:
                    self.running -= 1

    async def main():
        m = Overlap()
        b = MicroBatcher(m, concurrency=2)
        b.start()
        calls = [asyncio.ensure_future(b.submit([f"t{i}"])) for i in range(6)]  # queued together, both slots free
        got = await asyncio.gather(*calls)
        await b.stop()
        return m, got

    m, got = run(main())
    assert got == [[f"T{i}"] for i in range(6)]  # every caller gets its own answer
    assert m.most == 2  # two model calls at once
    assert sorted(len(x) for x in m.batches) == [3, 3]  # the queue was shared out, not poured into one call
