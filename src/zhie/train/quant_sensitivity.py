"""Which matrix products lose most under dynamic INT8, measured on training text.

Dynamic quantisation gives each MatMul input one scale per call; where an input carries a few outlier
activations the small values collapse, and a handful of such products cost most of the INT8 loss. This
tool measures that on the run's own fused float32 graph: the mean absolute difference of the model
output (emissions, logits or pointers) between float32 and INT8 when one group of products stays in
float32, first per layer, then per kind (qkv, attention output, ffn1, ffn2) within the worst layers,
then greedily combined. It prints one JSON line per measurement and, last, the ``--keep-float``
expression for ``zhie export``. The texts come from the training part of the file (``split_dev``'s
train side), so choosing what to keep never looks at the dev split the export is checked on. For the
extractor, ``--format uie`` feeds what it serves: prompt, separator and text, drawn from the training
side of the extraction mixture (``--data`` is then the datasets folder).

    python -m zhie.train.quant_sensitivity --run runs/ner-v2 --data ../shared/datasets/ner/msra/train.bio --format bio
    python -m zhie.train.quant_sensitivity --run runs/extract-v5 --data ../shared/datasets --format uie
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from ..models.export import matmuls_matching, quantize
from ..runtime.session import cpu_model
from ..text.vocab import BOS, EOS, PAD, CharVocab

KINDS = {
    "qkv": r"attention/self/(query|key|value)/MatMul$",
    "attn_out": r"attention/output/dense/MatMul$",
    "ffn1": r"intermediate/dense/MatMul$",
    "ffn2": r"output/dense/MatMul$",  # after the layer prefix: not attention/output/dense
}


def read_texts(path: str, fmt: str, sample: int, seed: int) -> list[str]:
    from .data import read_ner, split_dev

    if fmt == "lines":
        texts = [t for t in Path(path).read_text(encoding="utf-8").splitlines() if t.strip()]
    else:
        texts = [d.text for d in read_ner(path, fmt)]
    train, _ = split_dev(texts, 0.05, 13)  # the same carve-out as training and eval: dev is never looked at
    random.Random(seed).shuffle(train)
    return train[:sample]


def encode_texts(texts: list[str], vocab: CharVocab, max_chars: int = 254) -> list[np.ndarray]:
    """Model inputs as the NER and sentiment models see them: [BOS] text [EOS]."""
    return [np.concatenate([[BOS], vocab.encode(t[:max_chars]), [EOS]]).astype(np.int64) for t in texts]


def uie_inputs(datasets: str, vocab: CharVocab, sample: int, seed: int, max_len: int = 256) -> list[np.ndarray]:
    """Extractor inputs as served: [BOS] prompt [EOS] text [EOS], one per (prompt, text) example of the
    training side of the mixture (held-out type names excluded, absent-type prompts included)."""
    from .extract import encode_example
    from .uie_data import examples, load_records

    train, _ = load_records(datasets)
    exs = examples(train, negatives=1, seed=seed)
    random.Random(seed).shuffle(exs)
    return [encode_example(x.prompt, x.text, x.spans, vocab, max_len)[0][0] for x in exs[:sample]]


def model_inputs(run: Path, data: str, fmt: str, sample: int, seed: int) -> list[np.ndarray]:
    """Up to ``sample`` inputs of ``data`` encoded with the run's vocabulary: prompted extractor inputs for
    ``fmt`` "uie" (``data`` is the datasets folder), else texts read in that format."""
    vocab = CharVocab.load(Path(run) / "vocab.txt")
    if fmt == "uie":
        return uie_inputs(data, vocab, sample, seed)
    return encode_texts(read_texts(data, fmt, sample, seed), vocab)


def batches(seqs: list[np.ndarray], size: int = 32):
    seqs = sorted(seqs, key=len)
    for k in range(0, len(seqs), size):
        chunk = seqs[k:k + size]
        width = max(len(s) for s in chunk)
        ids = np.full((len(chunk), width), PAD, dtype=np.int64)
        mask = np.zeros((len(chunk), width), dtype=np.int64)
        for r, s in enumerate(chunk):
            ids[r, :len(s)], mask[r, :len(s)] = s, 1
        yield ids, mask


def feeds(padded) -> list[dict]:
    """ONNX feed dicts of (ids, mask) batches (:func:`batches`)."""
    return [{"input_ids": i, "attention_mask": m} for i, m in padded]


class Probe:
    def __init__(self, fused: Path, seqs: list[np.ndarray], threads: int):
        self.fused, self.threads = fused, threads
        self.batches = list(batches(seqs))
        self.reference = self._outputs(fused)
        self.tmp = Path(tempfile.mkdtemp(prefix="zhie-qs-"))

    def _outputs(self, path: Path) -> list[np.ndarray]:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        sess = ort.InferenceSession(cpu_model(path), so, providers=["CPUExecutionProvider"])
        return [sess.run(None, f)[0] for f in feeds(self.batches)]

    def error(self, keep: list[str]) -> dict:
        out = self.tmp / "q.onnx"
        quantize(self.fused, out, float_nodes=keep)
        diffs = []
        for (_, mask), ref, got in zip(self.batches, self.reference, self._outputs(out)):
            d = np.abs(ref - got)
            diffs.append(d[mask.astype(bool)].ravel() if d.ndim == 3 else d.ravel())
        d = np.concatenate(diffs)
        return {"mad": round(float(d.mean()), 5), "p99": round(float(np.quantile(d, 0.99)), 4),
                "mb": round(out.stat().st_size / 1e6, 1)}


def group_regex(groups: list[tuple[int, str]]) -> str:
    return "|".join(rf"layer\.{layer}/{KINDS[kind]}" for layer, kind in groups)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zhie.train.quant_sensitivity", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="training run with export/model.fused.onnx (run zhie export first)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--format", default="bio",
                    help="bio, bmes, weibo, cluener, lines (one text per line), or uie (--data is the datasets folder)")
    ap.add_argument("--sample", type=int, default=400)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--layers", type=int, default=3, help="worst layers looked into per kind")
    ap.add_argument("--max-groups", type=int, default=4, help="most (layer, kind) groups kept in float32")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    run = Path(args.run)
    fused = run / "export" / "model.fused.onnx"
    if not fused.exists():
        ap.error(f"{fused} not found: run `zhie export --run {run} ...` first")
    t0 = time.time()
    probe = Probe(fused, model_inputs(run, args.data, args.format, args.sample, args.seed), args.threads)

    names = matmuls_matching(fused, r".")  # the graph is read once; groups are picked from its names

    def nodes(pattern: str) -> list[str]:
        rx = re.compile(pattern)
        return [n for n in names if rx.search(n)]

    def report(what: str, keep: list[str]) -> float:
        r = probe.error(keep)
        print(json.dumps({"keep_float": what, "nodes": len(keep), **r}, ensure_ascii=False), flush=True)
        return r["mad"]

    base = report("none", [])
    n_layers = 1 + max(int(m.group(1)) for n in names if (m := re.search(r"layer\.(\d+)/", n)))
    per_layer = {layer: report(f"layer {layer}", nodes(rf"layer\.{layer}/")) for layer in range(n_layers)}
    worst = sorted(per_layer, key=per_layer.get)[:args.layers]
    singles = {}
    for layer in worst:
        for kind in KINDS:
            singles[(layer, kind)] = report(f"layer {layer} {kind}", nodes(group_regex([(layer, kind)])))
    order = sorted(singles, key=singles.get)
    best, best_mad, chosen = [], base, []
    for g in order[:args.max_groups]:
        chosen = chosen + [g]
        mad = report(group_regex(chosen), nodes(group_regex(chosen)))
        if mad < best_mad:
            best, best_mad = list(chosen), mad
    print(json.dumps({"keep_float": group_regex(best), "mad": best_mad, "mad_all_int8": base,
                      "seconds": round(time.time() - t0, 1)}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
