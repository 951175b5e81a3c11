"""Sentiment: positive / negative (/ neutral where the model has it) with a calibrated confidence.

Text longer than one window is read in windows; the window log-probabilities are averaged,
weighted by window length, so every character counts and nothing is truncated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..models.bundle import ModelBundle, load_bundle
from ..runtime.session import OnnxSession
from ..text.normalize import normalize
from ..text.vocab import BOS, EOS, PAD
from ..text.windows import make_windows

DEFAULT_MODEL = "sentiment"


@dataclass(slots=True)
class SentimentResult:
    label: str
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"label": self.label, "confidence": self.confidence, "scores": dict(self.scores)}


@dataclass
class SentimentOptions:
    window: int = 254
    max_batch_tokens: int = 8192
    max_batch_size: int = 64


class SentimentClassifier:
    def __init__(self, bundle: ModelBundle, session: OnnxSession, options: SentimentOptions | None = None):
        self.bundle = bundle
        self.session = session
        self.options = options or SentimentOptions()
        self.labels: list[str] = bundle.config["labels"]
        self.temperature = float(bundle.config.get("temperature", 1.0))

    @classmethod
    def load(cls, name_or_path: str = DEFAULT_MODEL, threads: int | None = None, device: str = "cpu",
             options: SentimentOptions | None = None) -> "SentimentClassifier":
        bundle = load_bundle(name_or_path, task="sentiment")
        return cls(bundle, OnnxSession(bundle.onnx_path, threads=threads, device=device), options)

    def _logits(self, seqs: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(seqs), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        opt = self.options
        i = 0
        while i < len(order):
            j = i + 1
            while j < len(order) and j - i < opt.max_batch_size and (len(seqs[order[j]]) + 2) * (j - i + 1) <= opt.max_batch_tokens:
                j += 1
            idx = order[i:j]
            T = len(seqs[idx[-1]]) + 2
            x = np.full((len(idx), T), PAD, dtype=np.int64)
            m = np.zeros((len(idx), T), dtype=np.int64)
            for r, k in enumerate(idx):
                n = len(seqs[k])
                x[r, 0], x[r, n + 1] = BOS, EOS
                x[r, 1 : n + 1] = seqs[k]
                m[r, : n + 2] = 1
            (logits,) = self.session.run(input_ids=x, attention_mask=m)
            out[idx] = logits
            i = j
        return out

    def predict(self, texts: Sequence[str]) -> list[SentimentResult]:
        seqs, owner, weight = [], [], []
        for t_i, text in enumerate(texts):
            ids = self.bundle.vocab.encode(normalize(text), normalized=True)
            for w in make_windows(len(ids), self.options.window, 0) if len(ids) else []:
                seqs.append(ids[w.start : w.end])
                owner.append(t_i)
                weight.append(w.end - w.start)
            if not len(ids):  # empty text: the model still answers (from the specials alone)
                seqs.append(ids)
                owner.append(t_i)
                weight.append(1)
        logits = self._logits(seqs) / self.temperature
        logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        agg = np.zeros((len(texts), len(self.labels)))
        tot = np.zeros(len(texts))
        for lp, o, w in zip(logp, owner, weight):
            agg[o] += w * lp
            tot[o] += w
        agg /= tot[:, None]
        probs = np.exp(agg - np.logaddexp.reduce(agg, axis=1, keepdims=True))
        out = []
        for p in probs:
            k = int(p.argmax())
            out.append(SentimentResult(self.labels[k], round(float(p[k]), 4), {lab: round(float(v), 4) for lab, v in zip(self.labels, p)}))
        return out

    def __call__(self, text: str) -> SentimentResult:
        return self.predict([text])[0]
