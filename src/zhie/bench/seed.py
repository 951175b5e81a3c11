"""``zhie bench --baseline seed --model DIR``: an imported Hugging Face NER checkpoint served by zhie beside the
same checkpoint on the seed services' stack, in one run.

(a) zhie: ``zhie import DIR --task ner`` (INT8, the default) into a temporary folder, then ``zhie serve`` with
that folder as its only model (``ZHIE_NER_MODEL=OUT ZHIE_SENTIMENT_MODEL= ZHIE_EXTRACT_MODEL=``), on a fresh
model cache: its first start (cold cache) is measured for startup only, the second one (warm) for everything;
(b) the seed stack: the folder in transformers + torch, dynamic INT8 Linear layers, Flask behind
``gunicorn --preload -w 2`` (:mod:`zhie.bench.seed_app`). Both get the same texts over loopback HTTP. Memory
is summed over each server's processes, as PSS (shared pages counted once) and as RSS; startup is the time
from the server's launch to its first successful NER answer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .run import Server, _ver, bench_server, f1, free_port, load_sentences, long_text, machine


class FirstAnswer(Server):
    """A :class:`Server` whose startup runs to the first 200 answer to a real request, not only readiness."""

    def __init__(self, *args, probe: dict, **kw):
        super().__init__(*args, **kw)
        self.probe = probe

    def __enter__(self):
        import httpx

        t0 = time.perf_counter()
        super().__enter__()
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before its first answer")
                try:
                    if httpx.post(self.url, json=self.probe, timeout=120.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - t0 > 300:
                    raise TimeoutError(f"{self.name}: no successful answer at {self.url} within 300 s")
                time.sleep(0.01)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.startup = time.perf_counter() - t0
        return self


def import_checkpoint(src: Path, out: Path, logfile: Path, log) -> float:
    """``zhie import SRC --task ner --out OUT`` in a child process (its torch memory leaves with it); seconds."""
    t0 = time.perf_counter()
    with open(logfile, "w") as f:
        p = subprocess.run([sys.executable, "-m", "zhie.cli", "import", str(src), "--task", "ner", "--out", str(out)],
                           stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if p.returncode != 0:
        tail = logfile.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"zhie bench: `zhie import {src} --task ner` failed ({p.returncode}): {' | '.join(tail)} "
                         f"(full log: {logfile})")
    secs = time.perf_counter() - t0
    log(f"zhie import: {secs:.1f}s -> {out}")
    return secs


def check_imported(zdir: Path, src: Path) -> None:
    """``--zhie-model`` must be an import of ``--model`` (its provenance says so), else the comparison is void."""
    try:
        cfg = json.loads((zdir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SystemExit(f"zhie bench: --zhie-model {zdir}: config.json cannot be read ({e})") from None
    got = (cfg.get("source") or {}).get("path")
    if got is None or Path(got).resolve() != src.resolve():
        raise SystemExit(f"zhie bench: --zhie-model {zdir} was imported from {got!r}, not from --model {src}: "
                         f"import it with `zhie import {src} --task ner --out DIR`")


def report(a: argparse.Namespace, z: dict, b: dict, source: str, command: str, import_s: float | None,
           cold_startup: float | None, model_desc: str, load: tuple[tuple, tuple] | None = None) -> tuple[str, list[str]]:
    def row(name, r):
        return (f"| {name} | {r['pss_idle_mb']:.0f} | {r['rss_idle_mb']:.0f} | {r['pss_loaded_mb']:.0f} | {r['rss_loaded_mb']:.0f} "
                f"| {r['startup_s']:.2f} | {r['c1'].p50:.1f} | {r['c1'].pct(95):.1f} | {r['c8'].throughput:.1f} "
                f"| {r['c32'].throughput:.1f} | {r['c32'].pct(95):.0f} |")

    lines = [
        "# zhie vs the seed services' stack, on the same imported checkpoint",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- Command: `{command}`",
        f"- Checkpoint: {model_desc}",
        *([f"- Load average (1, 5, 15 min) at the start: {', '.join(f'{x:.2f}' for x in load[0])}; at the end: "
           f"{', '.join(f'{x:.2f}' for x in load[1])} (other work on the machine shares its cores)."] if load else []),
        f"- Inputs: {source}; {a.requests} requests at concurrency 1, {a.requests * 2} at 8, {a.requests * 8} at 32, "
        "over loopback HTTP (an aiohttp client on the same machine, sharing its cores), the same texts for both.",
        "- (a) zhie: `zhie import DIR --task ner --out OUT` (INT8, the default"
        + (f"; {import_s:.0f} s, not counted in startup" if import_s is not None
           else f"; imported beforehand, `--zhie-model {a.zhie_model}`")
        + "), then `zhie serve` with its defaults and that folder as its only model "
        "(`ZHIE_NER_MODEL=OUT ZHIE_SENTIMENT_MODEL= ZHIE_EXTRACT_MODEL=`): one process, ONNX Runtime, micro-batching.",
        f"- (b) seed stack: the same folder in transformers {_ver('transformers')} + torch {_ver('torch')} "
        "(`AutoTokenizer`, `AutoModelForTokenClassification`), `torch.ao.quantization.quantize_dynamic` INT8 Linear "
        "layers, first-piece labels, Flask behind `gunicorn --preload -w 2` (one torch thread per worker, set before "
        "the fork): src/zhie/bench/seed_app.py.",
        "- Memory: the sum over the server's processes (gunicorn: master and both workers) of PSS (shared pages counted "
        "once) and of RSS (shared pages counted in every process), after 20 warm-up requests (idle) and after the "
        "load runs (after load).",
        "- Startup: from launching the server to its first successful NER answer"
        + (f" (zhie on a warm model cache; its first start after the import, on a cold cache: {cold_startup:.2f} s)."
           if cold_startup is not None else "."),
        "",
        "| system | PSS idle (MB) | RSS idle (MB) | PSS after load (MB) | RSS after load (MB) | startup (s) | p50 c=1 (ms) "
        "| p95 c=1 (ms) | req/s c=8 | req/s c=32 | p95 c=32 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        row("zhie (imported, INT8)", z),
        row("seed stack (transformers + torch INT8, gunicorn -w 2)", b),
        "",
    ]
    if a.lengths:
        lines += ["## Time and peak memory against text length (one request)", "",
                  "| chars | zhie s | zhie peak MB | seed s | seed peak MB |", "|---:|---:|---:|---:|---:|"]
        for zs, bs in zip(z["scaling"], b["scaling"]):
            lines.append(f"| {zs['chars']:,} | {zs['seconds']:.2f} | {zs['peak_mb']:.0f} | {bs['seconds']:.2f} | {bs['peak_mb']:.0f} |")
        lines += ["", "Peak memory is the sum over the server's processes of each one's peak RSS during that request; "
                  "the seed stack cuts text past 512 tokens into pieces without overlap, zhie uses its overlapping windows.", ""]
    n = min(len(z["entities"]), len(b["entities"]))
    lines += ["## Same answers?", "",
              f"- Entity F1 of zhie against the seed stack on the {n} benchmark sentences (type, start, end): "
              f"{f1(z['entities'][:n], b['entities'][:n]):.3f}. Both run INT8 (each its own quantisation), and the "
              "decoders differ by design: the seed stack takes each word's argmax label, zhie Viterbi over the "
              "transitions BIO allows (README, \"Use your own model\"); the float32 parity of the import itself is "
              "checked by `zhie import`.", ""]
    ratios = [
        f"throughput c=32 zhie/seed: {z['c32'].throughput / b['c32'].throughput:.2f}x",
        f"throughput c=8 zhie/seed: {z['c8'].throughput / b['c8'].throughput:.2f}x",
        f"p50 latency c=1 zhie/seed: {z['c1'].p50 / b['c1'].p50:.2f}",
        f"memory (PSS, idle) zhie/seed: {z['pss_idle_mb'] / b['pss_idle_mb']:.2f}",
        f"memory (RSS, idle) zhie/seed: {z['rss_idle_mb'] / b['rss_idle_mb']:.2f}",
        f"memory (PSS, after load) zhie/seed: {z['pss_loaded_mb'] / b['pss_loaded_mb']:.2f}",
        f"startup zhie/seed: {z['startup_s'] / b['startup_s']:.2f}",
    ]
    lines += ["## Ratios zhie / seed stack", "", *[f"- {r}" for r in ratios], ""]
    return "\n".join(lines), ratios


def describe(folder: Path) -> str:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SystemExit(f"zhie bench: {folder / 'config.json'}: cannot be read ({e})") from None
    arch = ",".join(cfg.get("architectures") or ["?"])
    labels = len(cfg.get("id2label") or {})
    return (f"`{folder}`: {arch}, {cfg.get('num_hidden_layers', '?')} layers, hidden {cfg.get('hidden_size', '?')}, "
            f"vocabulary {cfg.get('vocab_size', '?')}, {labels} labels")


def main(a: argparse.Namespace, command: str, log) -> int:
    if not a.model:
        print("zhie bench --baseline seed: --model DIR is required (a Hugging Face token-classification folder; "
              "benchmarks/make_seed_checkpoint.py builds a bert-base-sized one)", file=sys.stderr)
        return 2
    src = Path(a.model)
    if not (src / "config.json").is_file():
        print(f"zhie bench --baseline seed: --model {src}: no config.json there (give a Hugging Face "
              "token-classification folder)", file=sys.stderr)
        return 2
    model_desc = describe(src)
    logdir = Path(a.out).parent / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    sentences, _gold, source = load_sentences(Path(a.datasets) if a.datasets else None, a.sentences)
    texts = {n: long_text(sentences, n) for n in a.lengths}
    load0 = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="zhie-bench-seed."))
    try:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "ZHIE_CACHE_DIR": str(work / "cache")}
        import_s = None
        if a.zhie_model:
            zdir = Path(a.zhie_model)
            check_imported(zdir, src)
        else:
            zdir = work / "model"
            import_s = import_checkpoint(src, zdir, logdir / "seed-import.log", log)
        probe = {"text": sentences[0]}

        def zhie_server() -> Server:
            port = free_port()
            return FirstAnswer("zhie", [sys.executable, "-m", "zhie.cli", "serve", "--port", str(port)],
                               {**env, "ZHIE_LOG_LEVEL": "warning", "ZHIE_NER_MODEL": str(zdir.resolve()),
                                "ZHIE_SENTIMENT_MODEL": "", "ZHIE_EXTRACT_MODEL": ""},
                               f"http://127.0.0.1:{port}/readyz", f"http://127.0.0.1:{port}/v1/ner",
                               logdir / "zhie-seed.log", probe=probe)

        with zhie_server() as cold:  # the first start after the import packs the model into the cache
            cold_startup = cold.startup
        log(f"zhie: first start (cold cache) answered in {cold_startup:.2f}s")
        z = bench_server(zhie_server(), sentences, texts, a, log)
        bport = free_port()
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        seed = FirstAnswer("seed", [gunicorn, "--preload", "-w", "2", "-b", f"127.0.0.1:{bport}", "--timeout", "900",
                                    "--log-level", "warning", "zhie.bench.seed_app:app"],
                           {**env, "ZHIE_SEED_MODEL": str(src.resolve())}, f"http://127.0.0.1:{bport}/health",
                           f"http://127.0.0.1:{bport}/ner", logdir / "seed.log", probe=probe)
        b = bench_server(seed, sentences, texts, a, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    md, ratios = report(a, z, b, source, command, import_s, cold_startup, model_desc, (load0, os.getloadavg()))
    Path(a.out).write_text(md, encoding="utf-8")
    log(f"wrote {a.out}")
    print("\n".join(ratios))
    return 0

