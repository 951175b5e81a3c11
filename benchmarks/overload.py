"""Overload: N requests at concurrency C against `zhie serve --max-queue 32 --max-batch-items 8`
(issue 23's acceptance), then a few at concurrency 1 to show the server serves normally at once.

    python benchmarks/overload.py                      # 2,000 requests at concurrency 256
    python benchmarks/overload.py --requests 5000 --concurrency 512 --workers 2

Prints the answers by status (a lost or reset request shows as an exception name), the share of
503s that carried Retry-After, p50/p99 of each, and the latency of the requests right after.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from zhie.bench.run import Server, free_port, machine

TEXTS = ["华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。", "国务院总理李强在北京人民大会堂会见了德国总理。", "短句"]


async def blast(url: str, n: int, concurrency: int) -> list[tuple[object, str | None, float]]:
    out: list = [None] * n
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as c:
        async def one(i: int) -> None:
            async with sem:
                t = time.perf_counter()
                try:
                    r = await c.post("/v1/ner", json={"text": TEXTS[i % len(TEXTS)]})
                    out[i] = (r.status_code, r.headers.get("retry-after"), time.perf_counter() - t)
                except httpx.HTTPError as e:
                    out[i] = (type(e).__name__, None, time.perf_counter() - t)

        await asyncio.gather(*(one(i) for i in range(n)))
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--max-queue", type=int, default=32)
    p.add_argument("--max-batch-items", type=int, default=8)
    a = p.parse_args(argv)
    port = free_port()
    logdir = Path(tempfile.mkdtemp(prefix="zhie-overload-"))
    cmd = [sys.executable, "-m", "zhie.cli", "serve", "--port", str(port), "--workers", str(a.workers),
           "--max-queue", str(a.max_queue), "--max-batch-items", str(a.max_batch_items)]
    srv = Server("zhie", cmd, {**os.environ, "ZHIE_LOG_LEVEL": "warning"}, f"http://127.0.0.1:{port}/readyz",
                 f"http://127.0.0.1:{port}", logdir / "serve.log")
    print(f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()}")
    print("command: python benchmarks/overload.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    with srv:
        t0 = time.perf_counter()
        res = asyncio.run(blast(srv.url, a.requests, a.concurrency))
        secs = time.perf_counter() - t0
        after = []
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            for _ in range(20):
                t = time.perf_counter()
                r = c.post("/v1/ner", json={"text": TEXTS[0]})
                after.append((r.status_code, time.perf_counter() - t))
    counts = collections.Counter(s for s, _, _ in res)
    print(f"{a.requests} requests at concurrency {a.concurrency} in {secs:.1f} s, --max-queue {a.max_queue} "
          f"--max-batch-items {a.max_batch_items}, workers {a.workers}")
    for status, n in sorted(counts.items(), key=lambda kv: str(kv[0])):
        lat = [t for s, _, t in res if s == status]
        extra = ""
        if status == 503:
            extra = f", with Retry-After: {sum(1 for s, ra, _ in res if s == 503 and ra)}"
        print(f"  {status}: {n} ({n / a.requests:.1%}), p50 {pct(lat, .5):.0f} ms, p99 {pct(lat, .99):.0f} ms{extra}")
    ok_after = sum(1 for s, _ in after if s == 200)
    print(f"right after: {ok_after}/{len(after)} answered 200, p50 {pct([t for _, t in after], .5):.0f} ms, "
          f"max {max(t for _, t in after) * 1000:.0f} ms")
    lost = sum(n for s, n in counts.items() if s not in (200, 503))
    shed_no_header = sum(1 for s, ra, _ in res if s == 503 and not ra)
    return 0 if lost == 0 and shed_no_header == 0 and ok_after == len(after) else 1


if __name__ == "__main__":
    sys.exit(main())
