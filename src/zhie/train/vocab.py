"""Build the pruned character vocabulary: what Chinese text needs, not XLM-R's 250k pieces.

Characters kept: printable ASCII, the GB2312 hanzi and symbols, jieba's dictionary characters and
every character in the training corpora, each only if the pretrained encoder has a piece for it
(otherwise it would be <unk> anyway). Characters are taken in their normalised form.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..text.normalize import normalize_char
from ..text.vocab import SPECIALS, CharVocab
from .encoder import E5Checkpoint, piece_for_char

TEXT_SUFFIXES = {".txt", ".tsv", ".csv", ".json", ".bio", ".conll", ".ann", ".bmes"}


def gb2312_chars() -> set[str]:
    out = set()
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                out.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return out


def jieba_chars() -> set[str]:
    try:
        import jieba
    except ImportError:
        return set()
    path = Path(jieba.__file__).parent / "dict.txt"
    chars: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            chars.update(line.split(" ", 1)[0])
    return chars


def corpus_chars(root: Path, min_count: int = 2) -> set[str]:
    counts: Counter[str] = Counter()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in TEXT_SUFFIXES:
            counts.update(p.read_text(encoding="utf-8", errors="ignore"))
    return {c for c, n in counts.items() if n >= min_count}


def build_vocab(ckpt: E5Checkpoint, datasets: Path | None) -> CharVocab:
    cands = {chr(i) for i in range(0x20, 0x7F)} | gb2312_chars() | jieba_chars()
    if datasets is not None and datasets.exists():
        cands |= corpus_chars(datasets)
    ids = ckpt.piece_ids()
    keep = set()
    for ch in cands:
        n = normalize_char(ch)
        if n.isprintable() or n == " ":
            if piece_for_char(n, ids) != SPECIALS.index("<unk>"):
                keep.add(n)
    return CharVocab(list(SPECIALS) + sorted(keep))
