"""The baseline zhie is measured against: NER served the way the services zhie replaces are built.

The same trained weights (a zhie training run, ``ZHIE_BASELINE_RUN``) loaded as a transformers
``BertModel`` + linear head + CRF in torch, with torch's dynamic INT8 quantisation of the Linear
layers, behind Flask and gunicorn (``--preload``, sync workers). It is not part of zhie's product.

torch with ``--preload`` hangs in forked workers when its intra-op thread pool was started in the
master; like its users do, the model is loaded with one torch thread (set before any torch work),
so the forked workers never touch a pool made in the master.

    gunicorn --preload -w 2 -b 127.0.0.1:8100 --timeout 600 zhie.bench.baseline_app:app
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from flask import Flask

torch.set_num_threads(int(os.environ.get("ZHIE_BASELINE_THREADS", "1")))
torch.set_num_interop_threads(1)

from ..tasks.crf import NEG, bio_constraints  # noqa: E402  (after the thread settings, as in the services)
from ..text.tags import bio_to_spans  # noqa: E402
from ..text.vocab import BOS, EOS, PAD, CharVocab  # noqa: E402

MAX_CHARS = 510  # BERT's 512 positions less <s> and </s>: longer text is cut into pieces
BATCH = 8


def load(run: Path):
    from ..train.export import load_trained

    model, vocab, kind = load_trained(run)
    if kind != "ner":
        raise SystemExit(f"{run} is a {kind} run, not NER")
    model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    model.eval()
    return model, vocab


def viterbi(em: torch.Tensor, trans: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> list[int]:
    score = start + em[0]
    back = []
    for t in range(1, em.shape[0]):
        s = score.unsqueeze(1) + trans
        best, idx = s.max(0)
        score = best + em[t]
        back.append(idx)
    last = int((score + end).argmax())
    path = [last]
    for idx in reversed(back):
        last = int(idx[last])
        path.append(last)
    return path[::-1]


class BaselineNer:
    def __init__(self, run: Path):
        self.model, self.vocab = load(run)
        self.labels = list(self.model.labels)
        crf = self.model.crf
        allowed, allowed_start = bio_constraints(self.labels)
        self.trans = crf.transitions.detach() + torch.tensor((~allowed) * NEG, dtype=torch.float32)
        self.start = crf.start.detach() + torch.tensor((~allowed_start) * NEG, dtype=torch.float32)
        self.end = crf.end.detach()

    @torch.inference_mode()
    def __call__(self, text: str) -> list[dict]:
        pieces = [(s, text[s : s + MAX_CHARS]) for s in range(0, len(text), MAX_CHARS)]
        out = []
        for b in range(0, len(pieces), BATCH):
            chunk = pieces[b : b + BATCH]
            T = max(len(p) for _, p in chunk) + 2
            ids = torch.full((len(chunk), T), PAD, dtype=torch.long)
            for r, (_, p) in enumerate(chunk):
                ids[r, 0], ids[r, len(p) + 1] = BOS, EOS
                ids[r, 1 : len(p) + 1] = torch.from_numpy(self.vocab.encode(p))
            em = self.model(ids, (ids != PAD).long())
            for r, (offset, p) in enumerate(chunk):
                tags = viterbi(em[r, 1 : len(p) + 1], self.trans, self.start, self.end)
                for typ, s, e in bio_to_spans([self.labels[t] for t in tags]):
                    out.append({"type": typ, "start": offset + s, "end": offset + e, "text": text[offset + s : offset + e]})
        return out


def create_app(run: str | Path | None = None) -> Flask:
    from .flask_ner import flask_ner_app

    return flask_ner_app(BaselineNer(Path(run or os.environ["ZHIE_BASELINE_RUN"])), "zhie-baseline")


app = create_app() if os.environ.get("ZHIE_BASELINE_RUN") else None
