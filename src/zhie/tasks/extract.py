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

Windows, spans and ``max_span`` count tokens (characters, for zhie's char models; WordPieces for an
imported UIE or SiameseUIE); offsets are always code points of the caller's string. How prompts are
written (``prompt``), how starts pair with ends (``pairing``) and the threshold are the model folder's
(docs/model-folder.md), not the decoder's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..models.bundle import ModelBundle, load_bundle
from ..runtime.session import OnnxSession, run_padded
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
    # a nested node asks its children for at most this many spans of its own per window (the most probable):
    # a window holds far fewer real ones, and at a threshold near 0 every token starts a span, which would
    # otherwise multiply the model passes of the next level by the window length (issue 23)
    max_parents_per_window: int = 32


@dataclass
class _Query:
    doc: int
    prompt: np.ndarray
    window: Window
    target: dict  # the result dict the spans go into
    name: str
    node: SchemaNode
    chain: tuple = ()  # (type, span text) of each ancestor span, root first


def dbc2sbc(s: str) -> str:
    """Full-width ASCII (U+FF01-U+FF5E) to half-width, as PaddleNLP Taskflow folds its prompts."""
    return "".join(chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else c for c in s)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def pair_spans(p_start: np.ndarray, p_end: np.ndarray, threshold: float, max_span: int,
               every_start: bool = False) -> list[tuple[int, int, float]]:
    """UIE decoding: each start above the threshold pairs with the nearest end at or after it (within
    ``max_span``); when several starts share that end, the nearest start wins (Taskflow's ``get_span``).
    ``every_start``: every start keeps its span, also where several share an end (SiameseUIE's
    ``get_entities``). Returns (start, end exclusive, probability = p_start * p_end)."""
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
        key = (s, e) if every_start else e
        if key not in out or s > out[key][0]:
            out[key] = (s, e + 1, prob)
    return sorted(out.values())


class SchemaExtractor:
    def __init__(self, bundle: ModelBundle, session: OnnxSession, options: ExtractOptions | None = None):
        self.bundle = bundle
        self.session = session
        self.options = options or ExtractOptions()
        cfg = bundle.config
        self.tokenizer = bundle.tokenizer
        self.specials = bundle.specials
        self.max_prompt = int(cfg.get("max_prompt", 32))
        self.split = int(cfg.get("split", 0))  # > 0: the split encoder (prompt and text apart in its lower layers)
        self.threshold = self.options.threshold if self.options.threshold is not None else float(cfg.get("threshold", 0.5))
        self.every_start = cfg.get("pairing", "nearest_start") == "every_start"
        if cfg.get("pairing", "nearest_start") not in ("nearest_start", "every_start"):
            raise ValueError(f"{bundle.path}: pairing {cfg['pairing']!r}: expected 'nearest_start' or 'every_start'")
        self.prompt_style = cfg.get("prompt", "zhie")
        if self.prompt_style not in ("zhie", "uie", "siamese"):
            raise ValueError(f"{bundle.path}: prompt {self.prompt_style!r}: expected 'zhie', 'uie' or 'siamese'")
        self.max_span = int(cfg.get("max_span", self.options.max_span))
        # [CLS] prompt [SEP] text [SEP]; a split model frames both apart ([CLS] … [SEP] each), and SiameseUIE's
        # hint takes the positions after its text's, so there too prompt and text share the positions
        room = bundle.max_positions - (4 if self.split else 3) - self.max_prompt
        if room < 1:
            raise ValueError(f"{bundle.path}: max_positions {bundle.max_positions} leave no room for text beside a prompt")
        if self.options.window > room:  # windows fit the model's own positions
            self.options = dataclasses.replace(self.options, window=room, overlap=min(self.options.overlap, room // 4))

    @classmethod
    def load(cls, name_or_path: str = DEFAULT_MODEL, threads: int | None = None, device: str = "cpu",
             options: ExtractOptions | None = None) -> "SchemaExtractor":
        bundle = load_bundle(name_or_path, task="extract")
        return cls(bundle, OnnxSession(bundle.onnx_path, threads=threads, device=device), options)

    def _prompt(self, name: str, chain: tuple = ()) -> np.ndarray:
        """Prompt ids for type ``name`` under the ancestor spans ``chain`` ((type, span text), root first)."""
        if self.prompt_style == "siamese":
            s = "".join(f"{t}: {span}, " for t, span in chain) + f"{name}: "
        elif self.prompt_style == "uie":
            s = dbc2sbc((chain[-1][1] + "的" if chain else "") + name)
        else:
            s = (chain[-1][1][: self.options.parent_chars] + "的" if chain else "") + name
            s = s[: self.max_prompt]
        return self.tokenizer.ids(s)[: self.max_prompt].astype(np.int64)

    def predict(self, texts: Sequence[str], schema: Schema, threshold: float | None = None) -> list[Result]:
        """One result per text, all against the same schema. ``threshold`` (0-1, default the model's)
        is what start and end probabilities must each pass: lower finds more, less precisely."""
        opt = self.options
        th = self.threshold if threshold is None else float(threshold)
        if not 0.0 <= th < 1.0:
            raise ValueError(f"threshold {th} is not in [0, 1)")
        encs = [self.tokenizer.encode(t) for t in texts]
        ids = [e.ids for e in encs]
        wins = [self._windows(t, e) for t, e in zip(texts, encs)]
        results: list[Result] = [{} for _ in texts]
        level: list[_Query] = []
        for d, t in enumerate(texts):
            for node in schema.roots:
                results[d].setdefault(node.name, [])
                prompt = self._prompt(node.name)
                for w in wins[d]:
                    level.append(_Query(d, prompt, w, results[d], node.name, node))
        while level:
            found = self._run(level, texts, encs, wins, th)
            level = []
            for q, d, span, ta, tb in self._most_probable(found):
                chain = q.chain + ((q.name, span.text),)
                for child in q.node.children:
                    span.relations.setdefault(child.name, [])
                    prompt = self._prompt(child.name, chain)
                    for w in wins[d]:
                        if w.start < tb and ta < w.end:  # windows around the parent
                            level.append(_Query(d, prompt, w, span.relations, child.name, child, chain))
        return [{k: v for k, v in r.items()} for r in results]

    def _most_probable(self, found: list) -> list:
        """The spans whose children are asked for: per (result list, type, window), the
        ``max_parents_per_window`` most probable, in text order."""
        groups: dict[tuple, list] = {}
        for f in found:
            groups.setdefault((id(f[0].target), f[0].name, f[0].window.start), []).append(f)
        cap = self.options.max_parents_per_window
        keep = {id(f) for g in groups.values() for f in sorted(g, key=lambda f: -f[2].probability)[:cap]}
        return [f for f in found if id(f) in keep]

    def _windows(self, text: str, enc) -> list[Window]:
        """Token windows; sentence starts mapped to the first token at or after them."""
        n = len(enc)
        if not n:
            return []
        if self.tokenizer.one_per_char:
            breaks = sentence_starts(text)
        else:
            breaks = sorted(set(np.searchsorted(enc.offsets[:, 0], sentence_starts(text)).tolist()) - {0, n})
        return make_windows_at(n, self.options.window, self.options.overlap, breaks)

    def _pointers(self, queries: list[_Query], ids) -> list[np.ndarray]:
        """Per query, the (window length, 2) start/end logits of its window's characters."""
        opt = self.options
        if self.split:
            return self._pointers_split(queries, ids)
        sep = self.specials.sep
        seqs = [np.concatenate([q.prompt, [sep], ids[q.doc][q.window.start : q.window.end]]).astype(np.int64) for q in queries]
        rows = run_padded(self.session, seqs, max_batch_tokens=opt.max_batch_tokens, max_batch_size=opt.max_batch_size,
                          specials=self.specials, type_split=[len(q.prompt) + 1 for q in queries])
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
            cls, sep, pad = self.specials.cls, self.specials.sep, self.specials.pad
            pids, pm = np.full((len(prompts), P), pad, np.int64), np.zeros((len(prompts), P), np.int64)
            for q in group:
                r = prompts[q.prompt.tobytes()]
                pids[r, : len(q.prompt) + 2] = [cls, *q.prompt.tolist(), sep]
                pm[r, : len(q.prompt) + 2] = 1
            tids, tm = np.full((len(windows), T), pad, np.int64), np.zeros((len(windows), T), np.int64)
            for (d, a, b), r in windows.items():
                tids[r, : b - a + 2] = [cls, *ids[d][a:b].tolist(), sep]
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

    def _run(self, queries: list[_Query], texts, encs, wins, threshold: float) -> list[tuple[_Query, int, Span, int, int]]:
        """Spans of one schema level; returns, for each span of a node with children, (query, doc, span,
        first token, one past its last token)."""
        best: dict[tuple[int, str, int, int], tuple[_Query, int, int, float, int, int]] = {}
        for q, row in zip(queries, self._pointers(queries, [e.ids for e in encs])):
            p = _sigmoid(row.astype(np.float32))
            n_tok = len(encs[q.doc])
            offsets = encs[q.doc].offsets
            w0, w1 = q.window.start, q.window.end
            for s, e, prob in pair_spans(p[:, 0], p[:, 1], threshold, self.max_span, self.every_start):
                ta, tb = w0 + s, w0 + e
                if (ta == w0 and ta > 0) or (tb == w1 and tb < n_tok):
                    if len(wins[q.doc]) > 1:
                        continue  # touches a cut edge: the neighbouring window sees it whole
                a, b = int(offsets[ta, 0]), int(offsets[tb - 1, 1])
                key = (id(q.target), q.name, a, b)
                if key not in best or prob > best[key][3]:
                    best[key] = (q, a, b, prob, ta, tb)
        found = []
        for q, a, b, prob, ta, tb in sorted(best.values(), key=lambda x: (x[1], x[2])):
            span = Span(texts[q.doc][a:b], a, b, prob)
            q.target.setdefault(q.name, []).append(span)
            if q.node.children:
                found.append((q, q.doc, span, ta, tb))
        return found

    def __call__(self, text: str, schema: Schema, threshold: float | None = None) -> Result:
        return self.predict([text], schema, threshold)[0]
