"""Character-bigram features for character taggers.

Every character reads two bigrams: the one it ends (the character before it and itself) and the one it
begins (itself and the character after it); a piece's edges pair with ``EDGE``. A ``BigramTable`` maps each
known bigram to a trained vector (row 0, the zero vector, is every bigram it does not know), and a
character's features are its two vectors side by side: a (len, 2 * dim) float32 row per character, the NER
model's per-character input ``lex``.

Training builds the key list from the training side's text (``BigramTable.count``), learns the vectors as an
embedding with the encoder (``zhie.train.ner``, ``--features bigram``), and the export writes keys and vectors
to one ``bigrams.npz`` that ships with the model. Features are computed on the normalised text, which has one
code point per original code point, so they line up with the model's characters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

EDGE = "\x02"  # what the first character's left bigram and the last one's right bigram pair with


def pairs(text: str) -> list[str]:
    """The len(text) + 1 bigrams of ``text`` between its edges: pair i is characters i - 1 and i."""
    s = EDGE + text + EDGE
    return [s[i : i + 2] for i in range(len(s) - 1)]


class BigramTable:
    def __init__(self, keys: list[str], vectors: np.ndarray | None = None):
        """``keys[i]`` is row ``i + 1`` of ``vectors`` ((len(keys) + 1, dim); row 0 is the unknown bigram)."""
        self.keys = list(keys)
        self.index = {k: i + 1 for i, k in enumerate(self.keys)}
        if vectors is not None and vectors.shape[0] != len(self.keys) + 1:
            raise ValueError(f"{vectors.shape[0]} bigram vectors for {len(self.keys)} keys (one more expected)")
        self.vectors = None if vectors is None else vectors.astype(np.float32)

    @classmethod
    def count(cls, texts: Iterable[str], max_size: int, min_count: int = 2) -> "BigramTable":
        """The ``max_size`` most frequent bigrams of ``texts`` seen at least ``min_count`` times (ties by
        first sight, so the same texts give the same table)."""
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(pairs(t))
        return cls([k for k, c in counts.most_common(max_size) if c >= min_count])

    @property
    def dim(self) -> int:
        """Per-character feature columns: two vectors."""
        if self.vectors is None:
            raise ValueError("this bigram table has keys but no vectors yet")
        return 2 * self.vectors.shape[1]

    def ids(self, text: str) -> np.ndarray:
        """(len(text), 2) int32: per character, the row of the bigram it ends and of the one it begins."""
        get = self.index.get
        p = np.fromiter((get(b, 0) for b in pairs(text)), dtype=np.int32, count=len(text) + 1)
        return np.stack([p[:-1], p[1:]], axis=1)

    def features(self, text: str) -> np.ndarray:
        """(len(text), 2 * dim) float32: each character's two bigram vectors side by side."""
        if self.vectors is None:
            raise ValueError("this bigram table has keys but no vectors yet")
        return self.vectors[self.ids(text)].reshape(len(text), self.dim)

    def save(self, path: str | Path) -> None:
        """Keys (and vectors, once trained, in float16) in one ``.npz``."""
        arrays = {"keys": np.array(self.keys, dtype="<U2")}
        if self.vectors is not None:
            arrays["vectors"] = self.vectors.astype(np.float16)
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "BigramTable":
        with np.load(path, allow_pickle=False) as z:
            return cls([str(k) for k in z["keys"]], z["vectors"] if "vectors" in z.files else None)
