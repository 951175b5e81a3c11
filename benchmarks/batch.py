"""Throughput of ``zhie batch``: characters/s of the local engine and of Ray Data with 1 and 2 actors,
for NER and sentiment, on this machine.

    python benchmarks/batch.py [--lines 1200] [--data FILE.jsonl]   # writes benchmarks/results/batch.md

The input is the first LINES texts of the CLUENER training file from ../shared/datasets (news and
web sentences of 3-50 characters), or of --data (JSONL with a "text" field). Each configuration is
two real ``zhie batch`` runs in a subprocess, on half the lines and on all of them: the table gives
the wall-clock figure of the full run (start-up, worker spawn, model load and, for Ray, starting the
local Ray included) and the marginal rate between the two runs (start-up cancels out). Every run's
output is compared byte for byte with the local engine's: the figures are of identical work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "ner" / "cluener" / "train.json"


def make_input(src: Path, lines: int, out: Path) -> int:
    chars = 0
    with open(src, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i >= lines:
                break
            text = json.loads(line)["text"]
            chars += len(text)
            g.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")
    return chars


def run(task: str, inp: Path, out: Path, engine: str, workers: int, threads: int, batch_chars: int) -> dict:
    cmd = [sys.executable, "-m", "zhie.cli", "batch", "--task", task, "--input", str(inp), "--output", str(out),
           "--overwrite", "--quiet", "--engine", engine, "--workers", str(workers), "--threads", str(threads),
           "--batch-chars", str(batch_chars)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1200)
    ap.add_argument("--batch-chars", type=int, default=2048,
                    help="characters a model call (default 2048: some 20 batches for 1,200 lines, so the work spreads over "
                         "the workers; the model sees the same calls as at 16,384, its inputs being cut to 1,024-2,048 "
                         "padded tokens a call either way)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--tasks", nargs="+", default=["ner", "sentiment"])
    ap.add_argument("--no-ray", action="store_true", help="local engine only")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "batch.md")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        raise SystemExit(f"{args.data}: no such file (give --data FILE.jsonl)")
    from zhie.batch.local import cores
    from zhie.bench.run import machine

    n = cores()
    configs = [("local", 1, 1), ("local", 1, n), ("local", n, 1)]
    if not args.no_ray:
        configs += [("ray", 1, 1), ("ray", 2, 1)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="zhie-batch-bench-") as tmp:
        half, full = Path(tmp) / "half.jsonl", Path(tmp) / "in.jsonl"
        chars_half = make_input(args.data, args.lines // 2, half)
        chars = make_input(args.data, args.lines, full)
        for task in args.tasks:
            ref = None
            for engine, workers, threads in configs:
                out = Path(tmp) / f"{task}-{engine}-{workers}x{threads}.jsonl"
                a = run(task, half, out, engine, workers, threads, args.batch_chars)
                s = run(task, full, out, engine, workers, threads, args.batch_chars)
                data = out.read_bytes()
                ref = ref if ref is not None else data
                marginal = (chars - chars_half) / (s["seconds"] - a["seconds"]) if s["seconds"] > a["seconds"] else float("nan")
                rows.append({"task": task, "engine": engine, "workers": workers, "threads": threads, "seconds": s["seconds"],
                             "chars_per_s": s["chars_per_s"], "marginal": round(marginal, 1),
                             "fixed": round(s["seconds"] - chars / marginal, 1) if marginal == marginal else float("nan"),
                             "same": data == ref})
                print(json.dumps(rows[-1]), file=sys.stderr)
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    lines = [
        "# zhie batch throughput",
        "",
        f"- machine: {machine()}",
        f"- date: {when}; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)",
        f"- command: `python benchmarks/batch.py --lines {args.lines} --batch-chars {args.batch_chars}` ({args.lines:,} "
        f"CLUENER texts, {chars:,} characters, {args.batch_chars:,} characters a batch)",
        "",
        "| task | engine | processes / actors | ONNX threads each | wall s | chars/s (wall) | chars/s (marginal) | fixed cost s | output = local 1x1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['task']} | {r['engine']} | {r['workers']} | {r['threads']} | {r['seconds']:.1f} | {r['chars_per_s']:,.0f} "
                     f"| {r['marginal']:,.0f} | {r['fixed']:.1f} | {'yes' if r['same'] else 'NO'} |")
    lines += ["", f"wall: the whole command on the {args.lines:,} lines (start-up, model load, for Ray starting a local Ray). "
              f"marginal: the extra characters over the extra seconds between a run on the first {args.lines // 2:,} lines and "
              "one on all of them, i.e. the rate once running, start-up cancelled out; fixed cost: wall minus the "
              "characters at that rate. docs/batch.md discusses the figures and how they scale."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
