"""NER time and peak memory against text length, INT8 (served) side by side with float32 (same weights).

    python benchmarks/ner_scaling.py --float runs/ner-msra-v1/export/float_bundle

Each (model, length) point runs in a fresh process so peak RSS is its own. Writes a markdown
table to benchmarks/results/ner_scaling.md (machine, date, command, numbers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

POINT = r"""
import json, sys, threading, time, psutil
from zhie.tasks.ner import NerTagger
model, n = sys.argv[1], int(sys.argv[2])
proc = psutil.Process()
t0 = time.perf_counter(); tagger = NerTagger.load(model); load_s = time.perf_counter() - t0
unit = "华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。今年的GDP增长了3.5%，😀市场反应积极。"
text = (unit * (n // len(unit) + 1))[:n]
tagger.predict([unit * 4])
idle = proc.memory_info().rss; peak = idle; done = False
def watch():
    global peak
    while not done:
        peak = max(peak, proc.memory_info().rss); time.sleep(0.002)
th = threading.Thread(target=watch); th.start()
t0 = time.perf_counter(); ents = tagger.predict([text])[0]; secs = time.perf_counter() - t0
done = True; th.join()
assert all(text[e.start:e.end] == e.text for e in ents)
print(json.dumps({"seconds": secs, "idle_mb": idle / 2**20, "peak_growth_mb": (peak - idle) / 2**20, "entities": len(ents), "load_s": load_s}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--int8", default="ner", help="served model (bundled name or folder)")
    ap.add_argument("--float", dest="float_model", default=None, help="float32 export of the same weights (baseline)")
    ap.add_argument("--lengths", default="100,1000,10000,100000,200000")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ner_scaling.md"))
    args = ap.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    models = [("zhie INT8", args.int8)] + ([("float32 baseline", args.float_model)] if args.float_model else [])
    rows = []
    for label, model in models:
        for n in lengths:
            p = subprocess.run([sys.executable, "-c", POINT, model, str(n)], capture_output=True, text=True, check=True)
            r = json.loads(p.stdout.strip().splitlines()[-1])
            r.update(model=label, chars=n)
            rows.append(r)
            print(json.dumps(r), flush=True)
    lines = [
        "# NER time and memory against text length",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `python benchmarks/ner_scaling.py {' '.join(sys.argv[1:])}`",
        "- each point in a fresh process; peak growth = peak RSS during the call minus RSS after load and warm-up",
        "",
        "| model | chars | seconds | µs/char | peak RSS growth (MB) | RSS after load (MB) | entities |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['chars']:,} | {r['seconds']:.3f} | {r['seconds'] / r['chars'] * 1e6:.1f} | "
                     f"{r['peak_growth_mb']:.1f} | {r['idle_mb']:.0f} | {r['entities']} |")
    if args.float_model:
        lines += ["", "| chars | time INT8 / float32 | RSS after load INT8 / float32 |", "|---:|---:|---:|"]
        by = {(r["model"], r["chars"]): r for r in rows}
        for n in lengths:
            a, b = by[("zhie INT8", n)], by[("float32 baseline", n)]
            lines.append(f"| {n:,} | {a['seconds'] / b['seconds']:.2f} | {a['idle_mb'] / b['idle_mb']:.2f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
