"""Overload and dying workers against a real `zhie serve`: every request gets an answer (200, or 503
with Retry-After when the queue is full), none is lost or reset, and the server serves normally
the moment the load drops; under --workers 2 a worker killed with SIGKILL is replaced."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
import threading
import time

import httpx
import psutil
import pytest

from conftest import EXAMPLE
from test_shutdown import start

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals and process groups")


async def blast(url: str, n: int, concurrency: int, texts: list[str]) -> list:
    """n requests, ``concurrency`` at a time, each on a connection of a pool of that size; returns
    (status, retry-after) or ("error", exception name) per request, in order."""
    out: list = [None] * n
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as c:
        async def one(i: int) -> None:
            async with sem:
                try:
                    r = await c.post("/v1/ner", json={"text": texts[i % len(texts)]})
                    out[i] = (r.status_code, r.headers.get("retry-after"))
                except httpx.HTTPError as e:
                    out[i] = ("error", f"{type(e).__name__} ({e.__context__!r})")

        await asyncio.gather(*(one(i) for i in range(n)))
    return out


def test_overload_sheds_with_503_retry_after_and_loses_nothing(tmp_path):
    # The keep-alive is set above the blast's length: with the default 5 s, a pooled connection the client
    # leaves idle that long (its own loop starved on 2 loaded cores) can be closed by the server just as the
    # client reuses it, HTTP/1.1's keep-alive race (docs/operations.md), not overload: 7 ReadErrors in 16 runs
    # at 5 s, none in 12 at 1,000 s (2026-12-01). What this test asserts is the shedding.
    proc, url, log = start(tmp_path, "--max-queue", "32", "--max-batch-items", "8", env={"ZHIE_KEEP_ALIVE_S": "60"})
    try:
        results = asyncio.run(blast(url, 768, 256, [EXAMPLE, EXAMPLE * 3, "短句"]))
        counts = collections.Counter(r[0] for r in results)
        errors = collections.Counter(r[1] for r in results if r[0] == "error")
        assert set(counts) <= {200, 503}, (counts, errors)  # no 500, no reset or refused connection
        assert counts[200] > 0 and counts[503] > 0, counts  # it was overloaded, and it kept serving
        assert all(ra == "1" for s, ra in results if s == 503)
        after = [httpx.post(url + "/v1/ner", json={"text": EXAMPLE}, timeout=30).status_code for _ in range(10)]
        assert after == [200] * 10  # normal service the moment the load drops
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


def test_a_worker_killed_under_load_is_replaced(tmp_path):
    proc, url, log = start(tmp_path, "--workers", "2")
    try:
        results: list = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=60) as c:
                while not stop.is_set():
                    try:
                        # a new connection each time, so the kernel spreads them over the workers
                        r = c.post(url + "/v1/ner", json={"text": EXAMPLE}, headers={"connection": "close"})
                        results.append((time.time(), r.status_code))
                    except httpx.HTTPError as e:
                        results.append((time.time(), type(e).__name__))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        deadline = killed_at + 90
        while True:  # replaced: two live workers again, the victim not among them, and serving
            kids = [w for w in psutil.Process(proc.pid).children() if w.status() != psutil.STATUS_ZOMBIE]
            if len(kids) == 2 and victim.pid not in {k.pid for k in kids}:
                break
            assert time.time() < deadline, "the killed worker was not replaced"
            time.sleep(0.2)
        n_before = len(results)
        while len(results) < n_before + 200:  # the last 200, with the new worker loaded or loading
            assert time.time() < deadline + 60
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(60)
        ok = sum(1 for _, s in results if s == 200)
        assert ok / len(results) >= 0.97, collections.Counter(s for _, s in results)
        assert all(s == 200 for _, s in results[-200:]), collections.Counter(s for _, s in results[-200:])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
