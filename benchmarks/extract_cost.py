"""How the cost of schema extraction grows with the number of schema nodes and with text length.

    python benchmarks/extract_cost.py --model FOLDER [--baseline FOLDER]   # writes benchmarks/results/extract_cost.md

zhie runs every prompt of a schema level in one batched model call; the usual UIE pipelines run a
pass per node. Both are timed here in the same process on the same model (an extraction model
folder: cost does not depend on how well it was trained, only on its architecture), for flat
schemas of 1 to 16 types and for texts of 100 to 10,000 characters. With ``--baseline`` a second
extraction model (e.g. the joint-encoder v5 beside the split-encoder s1) is timed the same way in the
same run, and the ratios are taken against it. The NER model's time on the same text is given for scale.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from zhie.bench.run import FALLBACK, machine
from zhie.tasks.extract import SchemaExtractor
from zhie.tasks.ner import NerTagger
from zhie.tasks.schema import parse_schema

TYPES = ["人物", "地点", "组织机构", "时间", "产品名称", "价格", "公司", "职位", "事件", "数量", "作品", "学校", "国家",
         "城市", "品牌", "型号"]
# the product brief's example, as the handwritten eval file holds it (its source is "brief")
_HANDWRITTEN = Path(__file__).resolve().parents[1] / "evals" / "extract-handwritten.jsonl"
_BRIEF_LINE = next(x for x in map(json.loads, filter(str.strip, _HANDWRITTEN.read_text(encoding="utf-8").splitlines()))
                   if x.get("source") == "brief")
BRIEF, BRIEF_SCHEMA = _BRIEF_LINE["text"], _BRIEF_LINE["schema"]


def best_of(fn, n: int = 3) -> float:
    fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="an extraction model folder")
    p.add_argument("--baseline", default=None, help="another extraction model folder timed beside it")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/extract_cost.md")
    a = p.parse_args()
    x = SchemaExtractor.load(a.model, threads=a.threads or None)
    b = SchemaExtractor.load(a.baseline, threads=a.threads or None) if a.baseline else None
    ner = NerTagger.load("ner", threads=a.threads or None)
    base = "".join(FALLBACK)

    def describe(m: SchemaExtractor) -> str:
        split = m.split
        return (f"split encoder ({split} of {m.bundle.config['encoder']['layers']} layers read prompt and text apart)"
                if split else "joint encoder (prompt and text read together in every layer)")

    lines = [
        "# Schema extraction: cost against schema size and text length",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- Command: `python benchmarks/extract_cost.py {' '.join(sys.argv[1:])}`",
        f"- Model: `{a.model}`, {describe(x)}" + (f"; baseline: `{a.baseline}`, {describe(b)}" if b else ""),
        "- Times are the best of 3 in one process; \"one pass per node\" runs a model once per type, as UIE pipelines do.",
        "",
        "## Flat schemas (a 100-character text)",
        "",
    ]
    if b:
        lines += ["| types | model: one call per level (ms) | baseline: one call per level (ms) | baseline: one pass per node (ms) "
                  "| model vs baseline | model vs a pass per node |", "|---:|---:|---:|---:|---:|---:|"]
    else:
        lines += ["| types | zhie: one batched call per level (ms) | one pass per node (ms) | ratio |", "|---:|---:|---:|---:|"]
    text = (base * 3)[:100]
    ref = b or x
    for n in (1, 2, 4, 8, 16):
        schema = parse_schema(TYPES[:n])
        batched = best_of(lambda: x.predict([text], schema))
        per_node = best_of(lambda: [ref.predict([text], parse_schema([t])) for t in TYPES[:n]])
        if b:
            other = best_of(lambda: b.predict([text], schema))
            lines.append(f"| {n} | {batched * 1000:.0f} | {other * 1000:.0f} | {per_node * 1000:.0f} | "
                         f"{other / batched:.2f}x faster | {per_node / batched:.2f}x faster |")
        else:
            lines.append(f"| {n} | {batched * 1000:.0f} | {per_node * 1000:.0f} | {per_node / batched:.2f} |")
        print(lines[-1], file=sys.stderr)
    lines += ["", "## Text length (4 types)", ""]
    lines += (["| characters | model (s) | baseline (s) | NER on the same text (s) |", "|---:|---:|---:|---:|"] if b else
              ["| characters | extract (s) | NER on the same text (s) |", "|---:|---:|---:|"])
    schema = parse_schema(TYPES[:4])
    for n in (100, 1000, 10000):
        t = (base * (n // len(base) + 1))[:n]
        e = best_of(lambda: x.predict([t], schema), 1 if n > 1000 else 3)
        r = best_of(lambda: ner.predict([t]), 1 if n > 1000 else 3)
        if b:
            o = best_of(lambda: b.predict([t], schema), 1 if n > 1000 else 3)
            lines.append(f"| {n:,} | {e:.2f} | {o:.2f} | {r:.2f} |")
        else:
            lines.append(f"| {n:,} | {e:.2f} | {r:.2f} |")
        print(lines[-1], file=sys.stderr)
    brief = parse_schema(BRIEF_SCHEMA)
    e = best_of(lambda: x.predict([BRIEF], brief))
    r = best_of(lambda: ner.predict([BRIEF]))
    o = f"; baseline {best_of(lambda: b.predict([BRIEF], brief)) * 1000:.0f} ms" if b else ""
    lines += ["", "## The product brief's example", "",
              f"{len(BRIEF)} characters, schema `{BRIEF_SCHEMA}` (5 types, one nested): extraction {e * 1000:.0f} ms{o}; "
              f"NER on the same text {r * 1000:.0f} ms.", ""]
    Path(a.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
