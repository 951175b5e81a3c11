"""NER model folders side by side: speed, memory, file, answers. Written for float32 against INT8 against
INT8 with a few products kept in float32; any NER folders compare the same way (`--title`, `--out`).

    python benchmarks/quantization.py --datasets ../shared/datasets \
        float32=runs/ner-v2/export/float_bundle int8=/tmp/ner-int8 mixed=src/zhie/models/bundled/ner

Each LABEL=FOLDER is an NER model folder. In one run on one machine: the model file's size, the
process's resident memory after loading it (a fresh interpreter per model), the p50 time of one
sentence at a time and the time of all sentences in one call (best of 3, models taken in turn),
and F1 against the gold entities of the same MSRA dev sentences. Ratios are to the first model.
Writes benchmarks/results/quantization.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from zhie.bench.run import f1, load_sentences, machine
from zhie.tasks.ner import NerTagger

RSS = """
import json, sys, psutil
from zhie.tasks.ner import NerTagger
t = NerTagger.load(sys.argv[1], threads=int(sys.argv[2]) or None)
t.predict(["华为技术有限公司创始人任正非在深圳接受采访。"])
print(json.dumps({"rss_mb": psutil.Process().memory_info().rss / 2**20}))
"""


def head_name(head: dict, features: dict | None = None) -> str:
    """What sits between the encoder and the CRF, from a model config's ``head`` (absent: a linear layer) and
    ``features`` (per-character inputs computed by a package: LAC's tags)."""
    parts = [f"BiLSTM {head['lstm']}" if head.get("lstm") else "linear"]
    if head.get("lex_dim"):
        what = f"{features['kind'].upper()} tags" if features else "lexicon"
        parts.append(f"{what} ({head['lex_dim']} features)")
    return " + ".join([*parts, "CRF"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", metavar="LABEL=FOLDER")
    p.add_argument("--datasets", default="../shared/datasets")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/quantization.md")
    p.add_argument("--title", default="NER model: float32, INT8 and INT8 with a few products in float32")
    a = p.parse_args()
    models = dict(m.split("=", 1) for m in a.models)
    sents, gold, source = load_sentences(Path(a.datasets), a.n)
    taggers = {k: NerTagger.load(v, threads=a.threads or None) for k, v in models.items()}
    one: dict[str, list[float]] = {k: [] for k in models}
    batch: dict[str, list[float]] = {k: [] for k in models}
    for rep in range(4):  # round 0 warms up and is not counted
        for k, t in taggers.items():
            times = []
            for s in sents:
                t0 = time.perf_counter()
                t.predict([s])
                times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            t.predict(sents)
            if rep:
                one[k].append(statistics.median(times))
                batch[k].append(time.perf_counter() - t0)
    rows = {}
    for k, folder in models.items():
        cfg = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        mem = json.loads(subprocess.run([sys.executable, "-c", RSS, folder, str(a.threads)], check=True,
                                        capture_output=True, text=True).stdout.strip().splitlines()[-1])
        pred = [{e.key() for e in ents} for ents in taggers[k].predict(sents)]
        rows[k] = {"file_mb": (Path(folder) / cfg["onnx"]).stat().st_size / 1e6, "rss_mb": mem["rss_mb"],
                   "p50_ms": min(one[k]) * 1000, "batch_s": min(batch[k]), "f1": f1(pred, gold) if gold else None,
                   "quantization": cfg.get("quantization", "none (float32)"),
                   "head": head_name(cfg.get("head", {}), cfg.get("features"))}
        print(k, rows[k], file=sys.stderr)
    first = next(iter(rows))
    ref = rows[first]
    lines = [
        f"# {a.title}",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- Command: `python benchmarks/quantization.py {' '.join(sys.argv[1:])}`",
        f"- Sentences: {source}; p50 of one sentence per call, and all in one call; best of 3 rounds, models in turn.",
        "- Memory: resident set of a fresh process after loading the model and answering one sentence.",
        f"- Ratios are to `{first}`.",
        "",
        "| model | head | quantisation | file (MB) | RSS (MB) | p50, one sentence (ms) | all in one call (s) | speed ratio (one call) | F1 on these sentences |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k, r in rows.items():
        lines.append(f"| {k} (`{models[k]}`) | {r['head']} | {r['quantization']} | {r['file_mb']:.1f} | {r['rss_mb']:.0f} | {r['p50_ms']:.1f} | "
                     f"{r['batch_s']:.2f} | {ref['batch_s'] / r['batch_s']:.2f}x | {r['f1']:.4f} |")
    lines.append("")
    Path(a.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
