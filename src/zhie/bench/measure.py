"""Measuring tools of ``zhie bench``: a process tree's memory, readiness, and a bounded HTTP load."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

import psutil


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def pss_mb(pid: int) -> float:
    """Memory of a process and its children: the sum of PSS (shared pages counted once over the
    processes that share them); RSS where PSS cannot be read."""
    total = 0
    for p in tree(pid):
        try:
            mi = p.memory_full_info()
            total += getattr(mi, "pss", mi.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2**20


def rss_mb(pid: int) -> float:
    """Memory of a process and its children as the sum of RSS (shared pages counted in every process)."""
    total = 0
    for p in tree(pid):
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2**20


def reset_peaks(pid: int) -> None:
    """Restart each process's peak-RSS counter (Linux: writing 5 to clear_refs)."""
    for p in tree(pid):
        try:
            with open(f"/proc/{p.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def peak_rss_mb(pid: int) -> float:
    """Sum over the tree of each process's peak RSS since the last :func:`reset_peaks`."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total / 2**20


def wait_ready(url: str, proc, timeout: float = 120.0) -> float:
    """Seconds until ``url`` answers 200 (``proc`` dying or the timeout raise)."""
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s")


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    ok: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


def drive(url: str, bodies: list[dict], concurrency: int, requests: int, timeout: float = 900.0,
          responses: list | None = None) -> LoadResult:
    """POST ``requests`` bodies (cycling through ``bodies``) with ``concurrency`` clients on kept-alive
    connections; every request is answered or counted as failed, then it returns. The client is
    aiohttp: on a 2-core box the load generator shares the CPU with the server, and aiohttp costs
    about half of httpx's time per request."""
    import aiohttp

    async def main() -> LoadResult:
        lat: list[float] = []
        statuses: dict[int, int] = {}
        nxt = 0
        conn = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=timeout)) as client:

            async def worker() -> None:
                nonlocal nxt
                while nxt < requests:
                    i = nxt
                    nxt += 1
                    t = time.perf_counter()
                    try:
                        async with client.post(url, json=bodies[i % len(bodies)]) as r:
                            code = r.status
                            body = await r.read()
                        if responses is not None and code == 200:
                            responses.append((i, json.loads(body)))
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        code = 0
                    statuses[code] = statuses.get(code, 0) + 1
                    if code == 200:
                        lat.append((time.perf_counter() - t) * 1000)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            wall = time.perf_counter() - t0
        return LoadResult(concurrency, requests, statuses.get(200, 0), wall, lat, statuses)

    return asyncio.run(main())
