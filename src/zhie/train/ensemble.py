"""What would an ensemble of NER models give? The ceiling for distilling it into one model.

Issue 3 lists distillation from an ensemble among the things to try. Distilling costs a teacher pass
over the training data and a student epoch; this measures first what the teacher itself scores. The
members are model folders with the same labels (float32 twins, ``RUN/export/float_bundle``, or served
INT8 folders): each reads the same windows, their emissions and CRF scores are averaged, and the
average is decoded by the serving code (``NerTagger``: windows, constrained Viterbi, seams), so the
figure is comparable with ``zhie eval ner``. Averaging emissions suits members that share a head's
lineage (one trained on from another); for unrelated heads, average marginals instead.

    python -m zhie.train.ensemble --models runs/ner-v4-imported/export/float_bundle runs/ner-v5/export/float_bundle \\
        --data ../shared/datasets/ner/msra/train.bio --format bio --dev-split
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np

from ..tasks.crf import CRF
from ..tasks.ner import NerTagger


class EnsembleTagger(NerTagger):
    """``NerTagger`` over the mean emissions and mean CRF scores of several taggers with the same labels."""

    def __init__(self, members: list[NerTagger], weights: list[float] | None = None):
        first = members[0]
        super().__init__(first.bundle, first.session, first.options)
        for m in members[1:]:
            if m.labels != first.labels:
                raise ValueError(f"{m.bundle.path}: labels {m.labels} differ from {first.bundle.path}'s {first.labels}")
            if m.char_features is not None:
                raise ValueError(f"{m.bundle.path}: models with per-character features are not supported here")
        w = np.asarray(weights or [1.0] * len(members), dtype=np.float64)
        self.members, self.weights = members, w / w.sum()

        def mean(key: str) -> np.ndarray:
            return sum(wi * np.asarray(m.bundle.config["crf"][key], dtype=np.float64) for wi, m in zip(self.weights, members))

        self.crf = CRF(self.labels, mean("transitions"), mean("start"), mean("end"))

    def _emissions(self, ids: list[np.ndarray], texts: list[str] | None = None) -> list[np.ndarray]:
        each = [m._emissions(ids, texts) for m in self.members]
        return [sum(wi * e[i] for wi, e in zip(self.weights, each)).astype(np.float32) for i in range(len(ids))]


def main(argv: list[str] | None = None) -> None:
    from .check import eval_tagger
    from .data import map_types, parse_map, read_ner, split_dev

    p = argparse.ArgumentParser(prog="python -m zhie.train.ensemble", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, help="NER model folders (or bundled names) with the same labels")
    p.add_argument("--weights", nargs="*", type=float, default=None, help="one per model (default: equal)")
    p.add_argument("--data", required=True)
    p.add_argument("--format", required=True)
    p.add_argument("--map", default="", help="TYPE=PER,... as zhie eval ner --map")
    p.add_argument("--dev-split", nargs="?", const="contiguous", default=None, choices=["contiguous", "random"],
                   help="score the carved dev split (5 %%, seed 13; contiguous blocks, or the old random split)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if a.weights and len(a.weights) != len(a.models):
        p.error("--weights needs one number per model")
    mapping = parse_map(a.map)
    docs = read_ner(a.data, a.format)
    if a.dev_split:
        docs = split_dev(docs, mode=a.dev_split)[1]
    docs = map_types(docs, mapping)
    members = [NerTagger.load(m, threads=a.threads) for m in a.models]
    types = sorted(set(mapping.values())) if mapping else None
    out = {"members": {}}
    for m in members:
        out["members"][str(m.bundle.path)] = eval_tagger(m, docs, types=types)["f1"]
    r = eval_tagger(EnsembleTagger(members, a.weights), docs, types=types)
    out.update({k: r[k] for k in ("precision", "recall", "f1", "per_type", "sentences", "seconds")})
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
