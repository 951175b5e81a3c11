"""Soak: many requests of mixed tasks and sizes (long texts and bad inputs among them) against one
`zhie serve` over loopback; RSS, p50/p99 and errors per window of requests.

    python benchmarks/soak.py                                  # 200,000 requests, windows of 10,000
    python benchmarks/soak.py --requests 20000 --window 2000   # a shorter run

The bar (issue 23): the server's RSS at the end of the run is at most 10 % above its RSS after the
first 10 % of the requests (the warm-up: allocator pools, ORT arenas, caches filled). An *error* is
an answer the request did not ask for: a 5xx other than 503-with-Retry-After, a reset or timed-out
connection, or a bad input answered 2xx / a good one answered 4xx. Each window also counts the 503s
(the queue bound at work, not errors) and the expected 4xx of the bad inputs.

Writes a markdown report (--out, default benchmarks/results/soak.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from zhie.bench.measure import rss_mb
from zhie.bench.run import Server, free_port, machine

SENTENCES = [
    "华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。",
    "国务院总理李强在北京人民大会堂会见了德国总理。",
    "阿里巴巴集团宣布在杭州成立新的研究院，由王坚博士领导。",
    "这家餐厅的菜太好吃了，服务也很周到，下次还会再来！",
    "快递太慢了，包装也破了，非常失望。",
    "上海交通大学与复旦大学联合举办了人工智能论坛。",
    "小米公司创始人雷军表示，新款手机将于下月在武汉发布。",
    "中国科学院院士在南京大学作了关于量子计算的报告。",
]
SCHEMAS = [["人物", "地点", "机构"], {"产品名称": None, "价格": None}, {"竞赛名称": ["主办方", "承办方"]}]


@dataclass
class Kind:
    name: str
    weight: float
    path: str
    body: object  # dict (sent as JSON) or bytes (sent raw)
    want: tuple[int, ...]  # statuses this request asks for (503 with Retry-After is always allowed)


def kinds(rng: random.Random, long_chars: int, max_text: int) -> list[Kind]:
    s = rng.choice(SENTENCES)
    long_text = "".join(rng.choice(SENTENCES) for _ in range(long_chars // 30 + 1))[:long_chars]
    return [
        Kind("ner", 40, "/v1/ner", {"text": s}, (200,)),
        Kind("ner-batch", 10, "/v1/ner", {"texts": rng.sample(SENTENCES, rng.randint(2, 6))}, (200,)),
        Kind("ner-paragraph", 6, "/v1/ner", {"text": "".join(rng.sample(SENTENCES, 5))}, (200,)),
        Kind("sentiment", 12, "/v1/sentiment", {"text": s}, (200,)),
        Kind("sentiment-batch", 4, "/v1/sentiment", {"texts": rng.sample(SENTENCES, 3)}, (200,)),
        Kind("analyze", 3, "/analyze", {"text": s}, (200,)),
        Kind("extract", 5, "/v1/extract", {"text": s, "schema": rng.choice(SCHEMAS)}, (200,)),
        Kind("long", 0.4, "/v1/ner", {"text": long_text}, (200,)),
        Kind("bad-json", 3, "/v1/ner", b'{"text": "unterminated', (400,)),
        Kind("bad-field", 3, "/v1/ner", {"txt": s}, (422,)),
        Kind("both-fields", 2, "/v1/sentiment", {"text": s, "texts": [s]}, (422,)),
        Kind("too-long", 2, "/v1/ner", {"text": "长" * (max_text + 1)}, (413,)),
        Kind("bad-schema", 2, "/v1/extract", {"text": s, "schema": {"": None}}, (400,)),
        Kind("empty-body", 1.6, "/v1/ner", b"", (400,)),
        Kind("not-an-object", 1, "/analyze", b"[1, 2]", (400,)),
        Kind("health", 5, "/healthz", None, (200,)),
    ]


@dataclass
class Window:
    start: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    shed: int = 0  # 503 + Retry-After
    expected_4xx: int = 0
    examples: list[str] = field(default_factory=list)

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")


async def run(url: str, pid: int | None, n: int, window: int, concurrency: int, seed: int, long_chars: int,
              max_text: int, log) -> tuple[list[Window], list[tuple[int, float]], float]:
    rng = random.Random(seed)
    windows = [Window(0)]
    rss: list[tuple[int, float]] = [(0, rss_mb(pid))] if pid else []
    mark10 = max(1, n // 10)
    done = 0
    next_i = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as c:
        async def one(k: Kind) -> None:
            nonlocal done
            w = windows[-1]
            t = time.perf_counter()
            try:
                if k.body is None:
                    r = await c.get(k.path)
                elif isinstance(k.body, bytes):
                    r = await c.post(k.path, content=k.body, headers={"content-type": "application/json"})
                else:
                    r = await c.post(k.path, content=json.dumps(k.body, ensure_ascii=False).encode())
                status, retry = r.status_code, r.headers.get("retry-after")
            except httpx.HTTPError as e:
                status, retry = type(e).__name__, None
            w.latencies.append(time.perf_counter() - t)
            if status in k.want:
                w.expected_4xx += isinstance(status, int) and 400 <= status < 500
            elif status == 503 and retry:
                w.shed += 1
            else:
                w.errors += 1
                if len(w.examples) < 5:
                    w.examples.append(f"{k.name}: {status}")
            done += 1

        async def worker() -> None:
            nonlocal next_i
            while next_i < n:
                next_i += 1
                ks = kinds(rng, long_chars, max_text)  # fresh bodies each time
                await one(rng.choices(ks, weights=[k.weight for k in ks])[0])
                if done and (done % window == 0 or done == mark10) and pid:
                    if done % window == 0:
                        rss.append((done, rss_mb(pid)))
                        w = windows[-1]
                        log(f"{done:>7} requests  RSS {rss[-1][1]:7.1f} MB  p50 {w.pct(.5):6.1f} ms  p99 {w.pct(.99):7.1f} ms  "
                            f"errors {w.errors}  503 {w.shed}  ({time.perf_counter() - t0:.0f} s)")
                        windows.append(Window(done))
                    if done == mark10 and done % window:
                        rss.append((done, rss_mb(pid)))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if windows[-1].latencies == []:
        windows.pop()
    if pid and rss[-1][0] != n:
        rss.append((n, rss_mb(pid)))
    return windows, rss, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--window", type=int, default=10_000, help="requests per reported window (RSS sampled at each)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seed", type=int, default=23)
    p.add_argument("--long-chars", type=int, default=3000, help="characters of the long texts (0.4 %% of requests)")
    p.add_argument("--max-text-chars", type=int, default=20000, help="the server's per-text limit (the too-long inputs pass it)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--url", help="soak a running server instead (RSS then not measured)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "soak.md"))
    a = p.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    command = "python benchmarks/soak.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = dt.datetime.now(dt.timezone.utc)
    if a.url:
        windows, rss, secs = asyncio.run(run(a.url, None, a.requests, a.window, a.concurrency, a.seed, a.long_chars, a.max_text_chars, log))
        startup = None
    else:
        port = free_port()
        logdir = Path(tempfile.mkdtemp(prefix="zhie-soak-"))
        env = {**os.environ, "ZHIE_LOG_LEVEL": "warning"}
        srv = Server("zhie", [sys.executable, "-m", "zhie.cli", "serve", "--port", str(port), "--workers", str(a.workers),
                              "--max-text-chars", str(a.max_text_chars)], env,
                     f"http://127.0.0.1:{port}/readyz", f"http://127.0.0.1:{port}", logdir / "serve.log")
        with srv:
            startup = srv.startup
            windows, rss, secs = asyncio.run(run(srv.url, srv.proc.pid, a.requests, a.window, a.concurrency, a.seed,
                                                 a.long_chars, a.max_text_chars, log))
    total = sum(len(w.latencies) for w in windows)
    errors = sum(w.errors for w in windows)
    lines = [
        "# Soak: mixed requests against one `zhie serve`",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; machine: {machine()}",
        f"- command: `{command}`",
        f"- {total} requests in {secs:.0f} s ({total / secs:.0f}/s), concurrency {a.concurrency}, seed {a.seed}, "
        f"workers {a.workers}" + (f", server startup {startup:.1f} s" if startup is not None else ""),
        "- mix: NER (single, batches of 2-6, 5-sentence paragraphs), sentiment, /analyze, schema extraction, "
        f"long texts of {a.long_chars} characters (0.4 %), and about 16 % bad inputs (bad JSON, wrong or both fields, "
        "over-limit text, bad schema, empty body, non-object) that must get their 4xx; /healthz 5 %",
        "",
        "| requests | RSS MB | p50 ms | p99 ms | errors | 503 + Retry-After | expected 4xx |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rss_at = dict(rss)
    ends = [w.start for w in windows[1:]] + [total]
    for w, end in zip(windows, ends):
        r = rss_at.get(end)
        lines.append(f"| {w.start + 1}-{end} | {r:.1f} |" if r is not None else f"| {w.start + 1}-{end} | - |")
        lines[-1] += f" {w.pct(.5):.1f} | {w.pct(.99):.1f} | {w.errors} | {w.shed} | {w.expected_4xx} |"
    verdict = ""
    if rss:
        mark = max(1, a.requests // 10)
        base = rss_at.get(mark)
        end_rss = rss[-1][1]
        growth = (end_rss / base - 1) * 100 if base else float("nan")
        ok = growth <= 10 and errors == 0
        verdict = (f"RSS at start {rss[0][1]:.1f} MB, after the first 10 % ({mark} requests) {base:.1f} MB, at the end "
                   f"{end_rss:.1f} MB: {growth:+.1f} % (bar: at most +10 %); errors: {errors}. "
                   f"**{'PASS' if ok else 'FAIL'}**")
        lines += ["", verdict]
    for w in windows:
        if w.examples:
            lines += ["", f"errors in the window from {w.start + 1}: " + "; ".join(w.examples)]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    log(verdict or f"{total} requests, {errors} errors")
    log(f"wrote {a.out}")
    return 0 if errors == 0 and (not rss or "PASS" in verdict) else 1


if __name__ == "__main__":
    sys.exit(main())
