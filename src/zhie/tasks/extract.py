"""Schema-driven extraction: a prompt-conditioned pointer network over text windows, UIE style.

For a schema ``{"属性词": {"情感词": null}, "价格": null}`` the model reads
``<s> 属性词 </s> text </s>`` and ``<s> 价格 </s> text </s>`` and marks where spans start and end;
each span found for a node with children then prompts the next level: ``<s> 信号的情感词 </s> …``.

Cost: one model call per schema *level*, not per node. Every (prompt, window) pair of a level goes
through the model together, batched by length, so a flat schema of ten types costs one batched
call whose size grows with types × windows; nested levels only read the windows around their parent
span. A split-encoder model (``split`` in its config, SiameseUIE's design) reads prompt and text apart
in its lower layers: each window's lower layers then run once for all the prompts of a level, and
only the upper layers run per (prompt, window) pair. Long text uses the same sentence-aligned
overlapping windows as NER; a span is taken from a window only where it does not touch that
window's cut edge, and duplicates keep their best score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..models.bundle import ModelBundle, load_bundle
from ..runtime.session import OnnxSession, run_padded
from ..text.normalize import normalize
from ..text.vocab import BOS, EOS, PAD
from ..text.windows import Window, make_windows_at, sentence_starts
from .schema import Result, Schema, SchemaNode, Span

DEFAULT_MODEL = "extract"


@dataclass
class ExtractOptions:
    window: int = 200  # text characters per model input (the prompt comes on top)
    overlap: int = 48
    threshold: float | None = None  # start and end probabilities must each pass it; None: the model's (0.5)
    max_span: int = 96  # characters
    parent_chars: int = 24  # characters of a parent span used in a nested prompt
    max_batch_tokens: int = 4096
    max_batch_size: int = 64


@dataclass
class _Query:
    doc: int
    prompt: np.ndarray
    window: Window
    target: dict  # the result dict the spans go into
    name: str
    node: SchemaNode


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def pair_spans(p_start: np.ndarray, p_end: np.ndarray, threshold: float, max_span: int) -> list[tuple[int, int, float]]:
    """UIE decoding: each start above the threshold pairs with the nearest end at or after it (within
    ``max_span``); when several starts share that end, the nearest start wins. Returns
    (start, end exclusive, probability = p_start * p_end)."""
    starts = np.flatnonzero(p_start > threshold)
    ends = np.flatnonzero(p_end > threshold)
    if not len(starts) or not len(ends):
        return []
    out: dict[int, tuple[int, int, float]] = {}
    j = np.searchsorted(ends, starts)
    for s, k in zip(starts.tolist(), j.tolist()):
        if k >= len(ends):
            continue
        e = int(ends[k])
        if e - s + 1 > max_span:
            continue
        prob = float(p_start[s] * p_end[e])
        if e not in out or s > out[e][0]:
            out[e] = (s, e + 1, prob)
    return sorted(out.values())


class SchemaExtractor:
    def __init__(self, bundle: ModelBundle, session: OnnxSession, options: ExtractOptions | None = None):
        self.bundle = bundle
        self.session = session
        self.options = options or ExtractOptions()
        cfg = bundle.config
        self.max_prompt = int(cfg.get("max_prompt", 32))
        self.split = int(cfg.get("split", 0))  # > 0: the split encoder (prompt and text apart in its lower layers)
        self.threshold = self.options.threshold if self.options.threshold is not None else float(cfg.get("threshold", 0.5))
        room = int(cfg.get("max_positions", 512)) - 3 - self.max_prompt
        if self.options.window > room:
            raise ValueError(f"window {self.options.window} is longer than the model allows with a prompt ({room})")

    @classmethod
    def load(cls, name_or_path: str = DEFAULT_MODEL, threads: int | None = None, device: str = "cpu",
             options: ExtractOptions | None = None) -> "SchemaExtractor":
        bundle = load_bundle(name_or_path, task="extract")
        return cls(bundle, OnnxSession(bundle.onnx_path, threads=threads, device=device), options)

    def _prompt(self, s: str) -> np.ndarray:
        return self.bundle.vocab.encode(s[: self.max_prompt])

    def predict(self, texts: Sequence[str], schema: Schema, threshold: float | None = None) -> list[Result]:
        """One result per text, all against the same schema. ``threshold`` (0-1, default the model's)
        is what start and end probabilities must each pass: lower finds more, less precisely."""
        opt = self.options
        th = self.threshold if threshold is None else float(threshold)
        if not 0.0 <= th < 1.0:
            raise ValueError(f"threshold {th} is not in [0, 1)")
        ids = [self.bundle.vocab.encode(normalize(t), normalized=True) for t in texts]
        wins = [make_windows_at(len(t), opt.window, opt.overlap, sentence_starts(t)) if t else [] for t in texts]
        results: list[Result] = [{} for _ in texts]
        level: list[_Query] = []
        for d, t in enumerate(texts):
            for node in schema.roots:
                results[d].setdefault(node.name, [])
                for w in wins[d]:
                    level.append(_Query(d, self._prompt(node.name), w, results[d], node.name, node))
        while level:
            found = self._run(level, texts, ids, wins, th)
            level = []
            for q_target, q_node, d, span in found:
                for child in q_node.children:
                    span.relations.setdefault(child.name, [])
                    prompt = self._prompt(texts[d][span.start : span.end][: opt.parent_chars] + "的" + child.name)
                    for w in wins[d]:
                        if w.start < span.end and span.start < w.end:  # windows around the parent
                            level.append(_Query(d, prompt, w, span.relations, child.name, child))
        return [{k: v for k, v in r.items()} for r in results]

    def _pointers(self, queries: list[_Query], ids) -> list[np.ndarray]:
        """Per query, the (window length, 2) start/end logits of its window's characters."""
        opt = self.options
        if self.split:
            return self._pointers_split(queries, ids)
        seqs = [np.concatenate([q.prompt, [EOS], ids[q.doc][q.window.start : q.window.end]]).astype(np.int64) for q in queries]
        rows = run_padded(self.session, seqs, max_batch_tokens=opt.max_batch_tokens, max_batch_size=opt.max_batch_size)
        out = []
        for q, row in zip(queries, rows):
            off = 1 + len(q.prompt) + 1
            out.append(row[off : off + q.window.end - q.window.start])
        return out

    def _pointers_split(self, queries: list[_Query], ids) -> list[np.ndarray]:
        """The split encoder: each model call takes the distinct prompts and windows of a group of queries
        (grouped by window, so a window's lower layers run once for all its prompts) and scores every
        (prompt, window) pair in the upper layers."""
        opt = self.options
        order = sorted(range(len(queries)), key=lambda i: (queries[i].doc, queries[i].window.start, len(queries[i].prompt)))
        out: list[np.ndarray | None] = [None] * len(queries)
        i = 0
        while i < len(order):
            j, P, T = i, 0, 0
            while j < len(order) and j - i < opt.max_batch_size:
                q = queries[order[j]]
                p2, t2 = max(P, len(q.prompt) + 2), max(T, q.window.end - q.window.start + 2)
                if j > i and (j - i + 1) * (p2 + t2) > opt.max_batch_tokens:
                    break
                P, T, j = p2, t2, j + 1
            group = [queries[k] for k in order[i:j]]
            prompts: dict[bytes, int] = {}
            windows: dict[tuple[int, int, int], int] = {}
            for q in group:
                prompts.setdefault(q.prompt.tobytes(), len(prompts))
                windows.setdefault((q.doc, q.window.start, q.window.end), len(windows))
            pids, pm = np.full((len(prompts), P), PAD, np.int64), np.zeros((len(prompts), P), np.int64)
            for q in group:
                r = prompts[q.prompt.tobytes()]
                pids[r, : len(q.prompt) + 2] = [BOS, *q.prompt.tolist(), EOS]
                pm[r, : len(q.prompt) + 2] = 1
            tids, tm = np.full((len(windows), T), PAD, np.int64), np.zeros((len(windows), T), np.int64)
            for (d, a, b), r in windows.items():
                tids[r, : b - a + 2] = [BOS, *ids[d][a:b].tolist(), EOS]
                tm[r, : b - a + 2] = 1
            pair_p = np.array([prompts[q.prompt.tobytes()] for q in group], np.int64)
            pair_t = np.array([windows[(q.doc, q.window.start, q.window.end)] for q in group], np.int64)
            (y,) = self.session.run(prompt_ids=pids, prompt_mask=pm, text_ids=tids, text_mask=tm,
                                    pair_prompt=pair_p, pair_text=pair_t)[:1]
            for r, k in enumerate(order[i:j]):
                q = queries[k]
                out[k] = y[r, 1 : 1 + q.window.end - q.window.start]
            i = j
        return out  # type: ignore[return-value]

    def _run(self, queries: list[_Query], texts, ids, wins, threshold: float) -> list[tuple[dict, SchemaNode, int, Span]]:
        opt = self.options
        best: dict[tuple[int, str, int, int], tuple[_Query, int, int, float]] = {}
        for q, row in zip(queries, self._pointers(queries, ids)):
            p = _sigmoid(row.astype(np.float32))
            n_text = len(texts[q.doc])
            for s, e, prob in pair_spans(p[:, 0], p[:, 1], threshold, opt.max_span):
                a, b = q.window.start + s, q.window.start + e
                if (a == q.window.start and a > 0) or (b == q.window.end and b < n_text):
                    if len(wins[q.doc]) > 1:
                        continue  # touches a cut edge: the neighbouring window sees it whole
                key = (id(q.target), q.name, a, b)
                if key not in best or prob > best[key][3]:
                    best[key] = (q, a, b, prob)
        found = []
        for q, a, b, prob in sorted(best.values(), key=lambda x: (x[1], x[2])):
            span = Span(texts[q.doc][a:b], a, b, prob)
            q.target.setdefault(q.name, []).append(span)
            if q.node.children:
                found.append((q.target, q.node, q.doc, span))
        return found

    def __call__(self, text: str, schema: Schema, threshold: float | None = None) -> Result:
        return self.predict([text], schema, threshold)[0]
