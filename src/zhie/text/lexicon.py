"""Lexicon features for character taggers: which dictionary words cover each character, and where.

A ``Lexicon`` is a word list with a category per word (``PER``, ``LOC``, ``ORG`` for names,
places and organisations, ``WORD`` for any other word). For every character of a text it marks,
for each category, whether some word of that category in the text begins there (B), continues
there (M) or ends there (E): a multi-hot row of ``3 * len(categories)`` features. Every word of
every length is matched (not one segmentation), so a name inside a longer word still shows.

The bundled NER lexicon is built from jieba's dictionary (its part-of-speech tags nr/nrt/nrfg,
ns, nt) by ``python -m zhie.train.lexicon``; the file is one ``word<TAB>category`` per line.
Features are computed on the normalised text, which has one code point per original code point,
so they line up with the model's characters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CATEGORIES = ("PER", "LOC", "ORG", "WORD")
POSITIONS = ("B", "M", "E")


class Lexicon:
    def __init__(self, words: dict[str, int], categories: tuple[str, ...] = CATEGORIES):
        self.categories = tuple(categories)
        self.words = words  # word -> bit mask of its categories
        self.max_len = max((len(w) for w in words), default=1)
        prefixes: set[str] = set()
        for w in words:
            for k in range(2, len(w)):
                prefixes.add(w[:k])
        self._prefixes = prefixes

    @property
    def dim(self) -> int:
        return len(POSITIONS) * len(self.categories)

    @classmethod
    def load(cls, path: str | Path, categories: tuple[str, ...] = CATEGORIES) -> "Lexicon":
        index = {c: i for i, c in enumerate(categories)}
        words: dict[str, int] = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                word, _, cat = line.rstrip("\n").partition("\t")
                if len(word) >= 2 and cat in index:
                    words[word] = words.get(word, 0) | (1 << index[cat])
        return cls(words, categories)

    def save(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for word in sorted(self.words):
                for i, cat in enumerate(self.categories):
                    if self.words[word] >> i & 1:
                        f.write(f"{word}\t{cat}\n")

    def matches(self, text: str) -> list[tuple[int, int, int]]:
        """(start, end, category mask) of every dictionary word in ``text`` of two or more characters."""
        out = []
        words, prefixes, n = self.words, self._prefixes, len(text)
        for i in range(n - 1):
            for j in range(i + 2, min(n, i + self.max_len) + 1):
                piece = text[i:j]
                mask = words.get(piece)
                if mask:
                    out.append((i, j, mask))
                if piece not in prefixes:
                    break
        return out

    def features(self, text: str) -> np.ndarray:
        """(len(text), dim) float32 multi-hot: column ``3 * c + p`` is category c at position p (B, M, E)."""
        feats = np.zeros((len(text), self.dim), dtype=np.float32)
        for s, e, mask in self.matches(text):
            for c in range(len(self.categories)):
                if mask >> c & 1:
                    feats[s, 3 * c] = 1.0
                    feats[s + 1 : e - 1, 3 * c + 1] = 1.0
                    feats[e - 1, 3 * c + 2] = 1.0
        return feats
