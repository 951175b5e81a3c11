"""Character vocabulary: one token per code point, vectorised lookup, offsets are indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .normalize import normalize

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
BOS, PAD, EOS, UNK = 0, 1, 2, 3
_MARK_ESC = "<U+2581>"
_TO_FILE = {" ": "\u2581", "\u2581": _MARK_ESC}
_FROM_FILE = {v: k for k, v in _TO_FILE.items()}


def codepoints(text: str) -> np.ndarray:
    """Code points of ``text`` as uint32 (lone surrogates included)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


class CharVocab:
    """Maps characters to ids. Entries 0..3 are the specials; every other entry is one character."""

    def __init__(self, tokens: list[str]):
        if tuple(tokens[:4]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}")
        chars = tokens[4:]
        if any(len(c) != 1 for c in chars):
            raise ValueError("every vocabulary entry after the specials must be one character")
        self.tokens = list(tokens)
        cps = np.fromiter((ord(c) for c in chars), dtype=np.uint32, count=len(chars))
        order = np.argsort(cps, kind="stable")
        self._cps = cps[order]
        self._ids = (order + 4).astype(np.int64)

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def load(cls, path: str | Path) -> "CharVocab":
        # one entry per line; a literal space is stored as "\u2581" so lines never hold bare white space,
        # and a literal "\u2581" as the escape _MARK_ESC (never a valid entry: entries are one character)
        lines = Path(path).read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls([_FROM_FILE.get(t, t) for t in lines])

    def save(self, path: str | Path) -> None:
        Path(path).write_text("".join(_TO_FILE.get(t, t) + "\n" for t in self.tokens), encoding="utf-8")

    def encode(self, text: str, normalized: bool = False) -> np.ndarray:
        """Ids for each code point of ``text`` (no specials added); unknown characters are UNK."""
        cps = codepoints(text if normalized else normalize(text))
        if cps.size == 0 or self._cps.size == 0:
            return np.full(cps.shape, UNK, dtype=np.int64)
        pos = np.searchsorted(self._cps, cps)
        pos = np.minimum(pos, self._cps.size - 1)
        hit = self._cps[pos] == cps
        return np.where(hit, self._ids[pos], UNK)
