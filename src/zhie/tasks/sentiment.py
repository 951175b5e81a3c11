"""Sentiment: positive / negative (/ neutral where the model has it) with a calibrated confidence.

Text longer than one window (of tokens, at most the model's positions) is read in windows; the window
log-probabilities are averaged, weighted by window length, so every token counts and nothing is
truncated. An imported classifier's labels were mapped to negative/positive(/neutral) at import where
its names allowed it (``source_labels`` keeps its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..models.bundle import ModelBundle, load_bundle
from ..runtime.session import OnnxSession, run_padded
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
    max_batch_tokens: int = 2048
    max_batch_size: int = 64


class SentimentClassifier:
    def __init__(self, bundle: ModelBundle, session: OnnxSession, options: SentimentOptions | None = None):
        self.bundle = bundle
        self.session = session
        self.options = options or SentimentOptions()
        self.labels: list[str] = bundle.config["labels"]
        self.temperature = float(bundle.config.get("temperature", 1.0))
        self.window = min(self.options.window, bundle.max_positions - 2)  # tokens per window

    @classmethod
    def load(cls, name_or_path: str = DEFAULT_MODEL, threads: int | None = None, device: str = "cpu",
             options: SentimentOptions | None = None) -> "SentimentClassifier":
        bundle = load_bundle(name_or_path, task="sentiment")
        return cls(bundle, OnnxSession(bundle.onnx_path, threads=threads, device=device), options)

    def _logits(self, seqs: list[np.ndarray]) -> np.ndarray:
        opt = self.options
        return np.stack(run_padded(self.session, seqs, max_batch_tokens=opt.max_batch_tokens, max_batch_size=opt.max_batch_size,
                                   specials=self.bundle.specials))

    def predict(self, texts: Sequence[str]) -> list[SentimentResult]:
        seqs, owner, weight = [], [], []
        for t_i, text in enumerate(texts):
            ids = self.bundle.tokenizer.ids(text)
            for w in make_windows(len(ids), self.window, 0) if len(ids) else []:
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
