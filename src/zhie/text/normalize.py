"""Normalisation for the model that never loses the way back to the caller's string.

Each code point is replaced by its NFKC form only when that form is a single code point
(full-width Latin, digits and punctuation become half-width, compatibility ideographs become
their unified form, ...). Anything that would expand or vanish is kept as it is, so the
normalised text has exactly one code point per original code point and position ``i`` of the
normalised text is position ``i`` of the original: offsets need no mapping table at all.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=65536)
def normalize_char(ch: str) -> str:
    try:
        n = unicodedata.normalize("NFKC", ch)
    except UnicodeError:  # pragma: no cover - lone surrogates normalise to themselves today
        return ch
    if len(n) != 1:
        return ch
    if n.isspace():
        return " "
    return n


# ASCII is NFKC-stable, so the only ASCII characters normalize_char changes are white space
_ASCII_SPACE = {i: " " for i in range(128) if chr(i).isspace() and i != 0x20}


def normalize(text: str) -> str:
    """Model-side form of ``text``; ``len(normalize(text)) == len(text)`` always."""
    if text.isascii():
        return text.translate(_ASCII_SPACE)  # same result as the per-character path below
    return "".join(map(normalize_char, text))
