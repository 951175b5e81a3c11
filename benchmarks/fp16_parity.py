"""fp16 GPU models against the INT8 CPU models they stand in for (issue 24's parity bar).

    python benchmarks/fp16_parity.py [--device cpu|cuda] [--limit N]   # writes benchmarks/results/fp16_parity.md

For each bundled model (or ``--ner/--sentiment/--extract FOLDER``) the fp16 model (the folder's
``model.fp16.onnx``, else one made from its INT8 model in the model cache: ``zhie.models.fp16``) runs on
``--device`` beside the INT8 model on the CPU, on:
- NER: Weibo dev, and the 5 % dev splits of MSRA and CLUENER (as MODELS.md scores them): sentences whose
  entities are identical, and F1 against the gold of each model;
- extraction: the eval files of ``evals/``: micro F1 of each;
- sentiment: ChnSentiCorp dev: labels identical, accuracy of each.
The bar: the same entities, extraction F1 within 0.005, sentiment labels identical on >= 99.5 %.
ONNX Runtime's CPU provider runs fp16 graphs, so ``--device cpu`` checks the graph here; the GPU's
kernels round differently, so the bar is met for the GPU only by ``--device cuda`` on one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("ZHIE_DATASETS", REPO.parent / "shared" / "datasets"))
NER_SETS = [  # (name, path, format, type map, dev split)
    ("Weibo dev", "ner/weibo/dev.conll", "weibo", "PER.NAM=PER,LOC.NAM=LOC,GPE.NAM=LOC,ORG.NAM=ORG", False),
    ("MSRA dev split", "ner/msra/train.bio", "bio", None, True),
    ("CLUENER dev split", "ner/cluener/train.json", "cluener",
     "name=PER,address=LOC,company=ORG,government=ORG,organization=ORG", True),
]


def fp16_twin(model, device: str, threads: int, kind: str = "fp16"):
    """A second task object on the same bundle whose session is its GPU model (``kind``) on ``device``."""
    from zhie.models.fp16 import fp16_model_for
    from zhie.runtime.device import DeviceSession
    from zhie.runtime.session import OnnxSession, default_cache_dir

    path, why = fp16_model_for(model.bundle, default_cache_dir(), kind)
    if why:
        raise SystemExit(f"{model.bundle.path}: {why}")
    s = OnnxSession(path, threads=threads, device=device, cache=False)
    if device == "cuda" and s.session.get_providers()[:1] != ["CUDAExecutionProvider"]:
        raise SystemExit(f"the CUDA provider did not start (providers {s.session.get_providers()})")
    twin = type(model).__new__(type(model))
    twin.__dict__.update(model.__dict__)
    twin.session = DeviceSession(model.bundle.name, model.session, s, primary_device=device) if device == "cuda" else s
    return twin, path


def float32_twin(model, threads: int, work: Path):
    """The reference with ``--reference float32``: the folder's INT8 graph dequantised, float32, on the CPU
    (what the fp16 model rounds; the INT8 model differs from it by its quantised activations)."""
    import onnx

    from zhie.models.fp16 import dequantize
    from zhie.runtime.session import OnnxSession

    out = work / f"{model.bundle.name}.float32.onnx"
    onnx.save(dequantize(onnx.load(str(model.bundle.onnx_path)))[0], str(out))
    twin = type(model).__new__(type(model))
    twin.__dict__.update(model.__dict__)
    twin.session = OnnxSession(out, threads=threads, cache=False)
    return twin


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the fp16 models run")
    p.add_argument("--ner", default="ner")
    p.add_argument("--sentiment", default="sentiment")
    p.add_argument("--extract", default="extract")
    p.add_argument("--limit", type=int, default=0, help="at most N sentences / texts per file (0: all)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--gpu-model", default="fp16", choices=["fp16", "int8"],
                   help="the GPU model to check: fp16, or int8 (the INT8 arithmetic in float32 ops)")
    p.add_argument("--reference", default="int8", choices=["int8", "float32"],
                   help="compare against the INT8 model (the bar) or its dequantised float32 graph (fp16 rounding alone)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "fp16_parity.md"))
    a = p.parse_args(argv)
    from zhie.runtime.session import default_threads
    from zhie.tasks.extract import SchemaExtractor
    from zhie.tasks.ner import NerTagger
    from zhie.tasks.scoring import score_entities
    from zhie.tasks.sentiment import SentimentClassifier
    from zhie.train.check import eval_extractor, read_extract_eval
    from zhie.train.data import map_types, parse_map, read_ner, split_dev
    from zhie.train.sentiment_data import read_sentiment

    threads = a.threads or default_threads()
    cut = (lambda xs: xs[: a.limit]) if a.limit else (lambda xs: xs)
    rows, ok = [], True
    t_all = time.perf_counter()

    import tempfile

    work = Path(tempfile.mkdtemp(prefix="zhie-parity-"))
    ref = (lambda m: float32_twin(m, threads, work)) if a.reference == "float32" else (lambda m: m)
    ner = NerTagger.load(a.ner, threads=threads)
    ner16, ner_path = fp16_twin(ner, a.device, threads, a.gpu_model)
    ner = ref(ner)
    for name, rel, fmt, spec, dev in NER_SETS:
        path = DATASETS / rel
        if not path.exists():
            rows.append(f"| NER | {name} | not found ({path}) | | |")
            continue
        mapping = parse_map(spec)
        docs = read_ner(path, fmt)
        docs = cut(map_types(split_dev(docs, 0.05, 13)[1] if dev else docs, mapping))
        texts = [d.text for d in docs]
        t0 = time.perf_counter()
        p8 = [x for i in range(0, len(texts), 64) for x in ner.predict(texts[i : i + 64])]
        p16 = [x for i in range(0, len(texts), 64) for x in ner16.predict(texts[i : i + 64])]
        same = sum([(e.type, e.start, e.end) for e in x] == [(e.type, e.start, e.end) for e in y] for x, y in zip(p8, p16))
        types = sorted(set(mapping.values())) if mapping else None
        f8 = score_entities([d.entities for d in docs], p8, types)["f1"]
        f16 = score_entities([d.entities for d in docs], p16, types)["f1"]
        ok &= same == len(docs)
        rows.append(f"| NER | {name} ({len(docs)} sentences) | {same / len(docs):.2%} sentences with the same entities "
                    f"({len(docs) - same} differ) | F1 {f8:.4f} | F1 {f16:.4f} ({time.perf_counter() - t0:.0f} s) |")

    x8 = SchemaExtractor.load(a.extract, threads=threads)
    x16, x_path = fp16_twin(x8, a.device, threads, a.gpu_model)
    x8 = ref(x8)
    for path in sorted((REPO / "evals").glob("extract-*.jsonl")):
        lines = cut(read_extract_eval(path))
        f8, f16 = eval_extractor(x8, lines)["f1"], eval_extractor(x16, lines)["f1"]
        ok &= abs(f8 - f16) <= 0.005
        rows.append(f"| extraction | {path.name} ({len(lines)} lines) | F1 difference {f16 - f8:+.4f} | F1 {f8:.4f} | F1 {f16:.4f} |")

    s8 = SentimentClassifier.load(a.sentiment, threads=threads)
    s16, s_path = fp16_twin(s8, a.device, threads, a.gpu_model)
    s8 = ref(s8)
    path = DATASETS / "sentiment" / "chnsenticorp" / "dev.tsv"
    if path.exists():
        pairs = cut(read_sentiment(path, "tsv"))
        texts = [t for t, _ in pairs]
        l8 = [r.label for i in range(0, len(texts), 64) for r in s8.predict(texts[i : i + 64])]
        l16 = [r.label for i in range(0, len(texts), 64) for r in s16.predict(texts[i : i + 64])]
        same = sum(x == y for x, y in zip(l8, l16)) / len(texts)
        acc = lambda ls: sum(x == g for x, (_, g) in zip(ls, pairs)) / len(pairs)  # noqa: E731
        ok &= same >= 0.995
        rows.append(f"| sentiment | ChnSentiCorp dev ({len(texts)} reviews) | {same:.2%} labels identical | accuracy {acc(l8):.4f} "
                    f"| accuracy {acc(l16):.4f} |")
    else:
        rows.append(f"| sentiment | ChnSentiCorp dev | not found ({path}) | | |")

    import onnxruntime as ort

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"# {a.gpu_model} GPU models (on {a.device}) against {'INT8' if a.reference == 'int8' else 'the dequantised float32 graph'} (on the CPU)",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; {cpu}, {os.cpu_count()} cores; "
        f"onnxruntime {ort.__version__}; {time.perf_counter() - t_all:.0f} s in all",
        f"- Command: `python benchmarks/fp16_parity.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        f"- GPU models: {ner_path.name} of {ner.bundle.name}, {x_path.name} of {x8.bundle.name}, {s_path.name} of "
        f"{s8.bundle.name} (made from the INT8 graphs: `zhie.models.fp16`)",
        *(["- **On the CPU provider: this checks the graphs, not the GPU's kernels; rerun with `--device cuda` on a GPU.**"]
          if a.device == "cpu" else []),
        "",
        f"| task | data | agreement | {'INT8' if a.reference == 'int8' else 'float32'} (CPU) | {a.gpu_model} |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        (f"Bar (same entities, extraction F1 within 0.005, sentiment labels >= 99.5 % identical): {'met' if ok else 'NOT met'}."
         if a.reference == "int8" else
         f"Against float32 (fp16 rounding alone, not the bar): {'no difference beyond the bar' if ok else 'differences'}."),
        "",
    ]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
