"""Named entities (PER, LOC, ORG): windows → encoder emissions → CRF decoding → entities.

``NerTagger.predict`` takes any number of texts of any length and returns, for each, the
entities with exact code-point offsets into the caller's string and a score: the mean CRF
marginal probability of the entity's tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..models.bundle import ModelBundle, load_bundle
from ..runtime.session import OnnxSession, run_padded
from ..text.lexicon import Lexicon
from ..text.normalize import normalize
from ..text.tags import bio_to_spans
from ..text.types import Entity
from ..text.windows import Window, make_windows_at, sentence_starts
from .crf import CRF

DEFAULT_MODEL = "ner"


@dataclass
class NerOptions:
    window: int = 128  # characters the model sees at once
    overlap: int = 32  # characters shared by neighbouring windows
    max_batch_tokens: int = 1024  # padded tokens per model call: bounds activation memory, same speed
    max_batch_size: int = 64


class NerTagger:
    CHUNK_WINDOWS = 256
    def __init__(self, bundle: ModelBundle, session: OnnxSession, options: NerOptions | None = None):
        self.bundle = bundle
        self.session = session
        self.options = options or NerOptions()
        cfg = bundle.config
        self.labels: list[str] = cfg["labels"]
        self.types = sorted({lab[2:] for lab in self.labels if lab != "O"})
        self._o = self.labels.index("O")
        crf = cfg["crf"]
        self.crf = CRF(self.labels, crf["transitions"], crf["start"], crf["end"])
        lex = cfg.get("lexicon")  # a model with lexicon features ships its word list
        self.lexicon = Lexicon.load(bundle.path / lex["file"], tuple(lex["categories"])) if lex else None
        max_window = int(cfg.get("max_positions", 512)) - 2
        if self.options.window > max_window:
            raise ValueError(f"window {self.options.window} is longer than the model allows ({max_window})")

    @classmethod
    def load(cls, name_or_path: str = DEFAULT_MODEL, threads: int | None = None, device: str = "cpu",
             options: NerOptions | None = None) -> "NerTagger":
        bundle = load_bundle(name_or_path, task="ner")
        return cls(bundle, OnnxSession(bundle.onnx_path, threads=threads, device=device), options)

    # -- model side -------------------------------------------------------------------------
    def _emissions(self, ids: list[np.ndarray], texts: list[str] | None = None) -> list[np.ndarray]:
        """Emissions for each id sequence, specials stripped; ``texts``: the normalised text of each
        sequence, for the lexicon features of a model that has them."""
        feats = None
        if self.lexicon is not None:
            if texts is None:
                raise ValueError("this model reads lexicon features: pass the texts of the sequences")
            feats = [self.lexicon.features(t) for t in texts]
        rows = run_padded(self.session, ids, max_batch_tokens=self.options.max_batch_tokens,
                          max_batch_size=self.options.max_batch_size, features=feats)
        return [row[1 : len(x) + 1] for row, x in zip(rows, ids)]

    def _decode(self, ems: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Viterbi tags and their marginal probabilities, batched over sequences of similar length."""
        tags: list[np.ndarray] = [None] * len(ems)  # type: ignore[list-item]
        probs: list[np.ndarray] = [None] * len(ems)  # type: ignore[list-item]
        order = sorted(range(len(ems)), key=lambda i: len(ems[i]))
        K = len(self.labels)
        for b in range(0, len(order), 64):
            idx = order[b : b + 64]
            T = max(len(ems[k]) for k in idx)
            em = np.zeros((len(idx), T, K), dtype=np.float32)
            lengths = np.array([len(ems[k]) for k in idx])
            for r, k in enumerate(idx):
                em[r, : lengths[r]] = ems[k]
            path = self.crf.viterbi(em, lengths)
            marg = self.crf.marginals(em, lengths)
            p = np.take_along_axis(marg, path[:, :, None], axis=2)[:, :, 0]
            for r, k in enumerate(idx):
                tags[k] = path[r, : lengths[r]]
                probs[k] = p[r, : lengths[r]]
        return tags, probs

    # -- public ------------------------------------------------------------------------------
    def predict(self, texts: Sequence[str]) -> list[list[Entity]]:
        opt = self.options
        plans: list[tuple[int, Window]] = []
        seqs: list[np.ndarray] = []
        normed: dict[int, str] = {}
        for t_i, text in enumerate(texts):
            if not text:
                continue
            norm = normalize(text)
            if self.lexicon is not None:
                normed[t_i] = norm
            ids = self.bundle.vocab.encode(norm, normalized=True)
            for w in make_windows_at(len(text), opt.window, opt.overlap, sentence_starts(text)):
                plans.append((t_i, w))
                seqs.append(ids[w.start : w.end])
        results: list[list[Entity]] = [[] for _ in texts]
        if not seqs:
            return results
        # windows go through the model a chunk at a time and only their tags and probabilities are
        # kept (5 bytes a character), so memory stays flat however long the text
        tags: list[np.ndarray] = []
        probs: list[np.ndarray] = []
        for i in range(0, len(seqs), self.CHUNK_WINDOWS):
            chunk = slice(i, i + self.CHUNK_WINDOWS)
            wtexts = [normed[t_i][w.start : w.end] for t_i, w in plans[chunk]] if normed else None
            t, p = self._decode(self._emissions(seqs[chunk], wtexts))
            tags += [x.astype(np.int8) for x in t]
            probs += p
        # stitch owned parts per text, then read spans once
        per_text: dict[int, list[tuple[Window, np.ndarray, np.ndarray]]] = {}
        for (t_i, w), tg, pr in zip(plans, tags, probs):
            per_text.setdefault(t_i, []).append((w, tg, pr))
        for t_i, parts in per_text.items():
            text = texts[t_i]
            full_tags = np.empty(len(text), dtype=np.int8)
            full_prob = np.empty(len(text), dtype=np.float32)
            seams = self._seams(parts)
            for (w, tg, pr), a, b in zip(parts, [0] + seams, seams + [len(text)]):
                full_tags[a:b] = tg[a - w.start : b - w.start]
                full_prob[a:b] = pr[a - w.start : b - w.start]
            labels = [self.labels[k] for k in full_tags.tolist()]
            results[t_i] = [
                Entity(typ, text[s:e], s, e, round(float(full_prob[s:e].mean()), 4)) for typ, s, e in bio_to_spans(labels)
            ]
        return results

    def _seams(self, parts: list[tuple[Window, np.ndarray, np.ndarray]]) -> list[int]:
        """Where each window hands over to the next: a position in their overlap that both tag O
        (so no entity of either window is cut there), the one nearest the middle of the overlap;
        the middle itself when the overlap has no such position."""
        seams: list[int] = []
        prev = 0
        for (a, ta, _), (c, tc, _) in zip(parts, parts[1:]):
            lo, hi = max(c.start, prev + 1), a.end - 1
            mid = min(max(a.own_end, lo), max(lo, hi))
            best = mid
            if lo <= hi:
                pos = np.arange(lo, hi + 1)
                ok = (ta[pos - a.start] == self._o) & (tc[pos - c.start] == self._o)
                if ok.any():
                    cand = pos[ok]
                    best = int(cand[np.abs(cand - mid).argmin()])
            seams.append(best)
            prev = best
        return seams

    def __call__(self, text: str) -> list[Entity]:
        return self.predict([text])[0]
