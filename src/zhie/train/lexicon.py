"""Build the NER lexicon file from jieba's dictionary (a train-extra dependency).

    python -m zhie.train.lexicon --out runs/lexicon.tsv [--word-min-freq 0]

Categories from jieba's part-of-speech tags: nr, nrt, nrfg → PER; ns → LOC; nt → ORG; every other
word of two or more characters (with at least ``--word-min-freq`` in jieba's counts) → WORD.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..text.lexicon import CATEGORIES, Lexicon

TAGS = {"nr": "PER", "nrt": "PER", "nrfg": "PER", "ns": "LOC", "nt": "ORG"}


def jieba_lexicon(word_min_freq: int = 0, categories: tuple[str, ...] = CATEGORIES) -> Lexicon:
    import jieba

    index = {c: i for i, c in enumerate(categories)}
    words: dict[str, int] = {}
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or len(parts[0]) < 2:
                continue
            word, freq, tag = parts[0], int(parts[1]), (parts[2] if len(parts) > 2 else "")
            cat = TAGS.get(tag, "WORD")
            if cat == "WORD" and freq < word_min_freq:
                continue
            if cat in index:
                words[word] = words.get(word, 0) | (1 << index[cat])
    return Lexicon(words, categories)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--word-min-freq", type=int, default=0)
    p.add_argument("--categories", default=",".join(CATEGORIES))
    args = p.parse_args(argv)
    lex = jieba_lexicon(args.word_min_freq, tuple(args.categories.split(",")))
    lex.save(args.out)
    print(f"{len(lex.words)} words, longest {lex.max_len}, {Path(args.out).stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
