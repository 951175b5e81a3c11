"""Readers for the sentiment corpora: every reader returns ``(text, label)`` pairs with labels
``positive`` / ``negative`` (and ``neutral`` where the corpus has it)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

SENTIMENT_FORMATS = ("tsv", "tsv-inverted", "nlpcc", "csv", "smp")
BINARY = {"1": "positive", "0": "negative"}
# the shared `shopping` corpus labels the other way round: 0 positive (出乎意料的好), 1 negative
# (每一个都是酸的); the bundled models agree with the inverted labels on 92-93 % of its dev file
INVERTED = {"1": "negative", "0": "positive"}
# SMP2020-EWECT: 0 neutral, 1 angry, 2 happy, 3 sad, 4 fear, 5 surprise (surprise has no polarity: dropped)
SMP = {"0": "neutral", "1": "negative", "2": "positive", "3": "negative", "4": "negative"}

_REVIEW = re.compile(r'<review\s+id="[^"]*"(?:\s+label="(?P<label>[01])")?\s*>(?P<body>.*?)</review>', re.S)


def read_tsv(path: Path, mapping: dict[str, str] = BINARY) -> list[tuple[str, str]]:
    out = []
    with open(path, encoding="utf-8-sig") as f:
        header = f.readline()
        if not header.startswith("label"):
            raise ValueError(f"{path}: expected a header 'label<TAB>text_a', got {header[:40]!r}")
        for line in f:
            line = line.rstrip("\r\n")
            if not line:
                continue
            label, _, text = line.partition("\t")
            if label in mapping and text.strip():
                out.append((text, mapping[label]))
    return out


def read_nlpcc(path: Path) -> list[tuple[str, str]]:
    """Pseudo-XML reviews; the label is the ``label`` attribute or, without it, the file name
    (``*.positive.txt`` / ``*.negative.txt``). A folder reads every such file in it."""
    path = Path(path)
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    out = []
    for p in files:
        default = "positive" if "positive" in p.name else "negative" if "negative" in p.name else None
        raw = p.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        for m in _REVIEW.finditer(raw):
            label = BINARY[m["label"]] if m["label"] else default
            if label is None:
                raise ValueError(f"{p}: review without a label attribute, and the file name names no polarity")
            text = m["body"].strip()
            if text:
                out.append((text, label))
    return out


def read_csv(path: Path) -> list[tuple[str, str]]:
    """CSV with a header holding ``label`` and ``review`` (other columns, e.g. ``cat``, ignored)."""
    out = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            text, label = (row.get("review") or "").strip().lstrip("\ufeff"), row.get("label")
            if text and label in BINARY:
                out.append((text, BINARY[label]))
    return out


def read_lines(path: Path, label: str) -> list[tuple[str, str]]:
    return [(t, label) for t in Path(path).read_text(encoding="utf-8-sig").splitlines() if t.strip()]


def read_sentiment(path: str | Path, fmt: str) -> list[tuple[str, str]]:
    path = Path(path)
    if fmt == "tsv":
        return read_tsv(path)
    if fmt == "tsv-inverted":
        return read_tsv(path, INVERTED)
    if fmt == "nlpcc":
        return read_nlpcc(path)
    if fmt == "csv":
        return read_csv(path)
    if fmt == "smp":
        return read_tsv(path, SMP)
    raise ValueError(f"unknown sentiment format {fmt!r}; expected one of {SENTIMENT_FORMATS}")


def write_unseen(dev: str | Path, train: list[str | Path], out: str | Path) -> tuple[int, int]:
    """Write the lines of a ``label<TAB>text`` dev file whose text is in none of the ``train`` files
    (same format): the dev figure of a model that cannot have memorised the answer. Returns
    (lines kept, lines in dev)."""
    seen = {t.strip() for p in train for t, _ in read_tsv(Path(p), {"0": "", "1": ""})}
    lines = Path(dev).read_text(encoding="utf-8-sig").splitlines()
    keep = [lines[0]] + [x for x in lines[1:] if x.strip() and x.partition("\t")[2].strip() not in seen]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(keep) + "\n", encoding="utf-8")
    return len(keep) - 1, sum(1 for x in lines[1:] if x.strip())


def write_tsv(pairs: list[tuple[str, str]], out: str | Path) -> None:
    """Write ``label<TAB>text_a`` lines (1 positive, 0 negative) that ``read_tsv`` reads back."""
    code = {"positive": "1", "negative": "0"}
    rows = ["label\ttext_a"] + [f"{code[lab]}\t{' '.join(t.split())}" for t, lab in pairs]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(rows) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """python -m zhie.train.sentiment_data --dev DEV.tsv --train TRAIN.tsv [...] --out OUT.tsv
    python -m zhie.train.sentiment_data --carve nlpcc2014 --datasets DIR --out OUT.tsv"""
    import argparse

    p = argparse.ArgumentParser(prog="python -m zhie.train.sentiment_data", description=write_unseen.__doc__.split("\n\n")[0])
    p.add_argument("--dev")
    p.add_argument("--train", nargs="+")
    p.add_argument("--carve", help="write the dev side carved out of this source (zhie.train.sentiment.CARVED)")
    p.add_argument("--datasets", default="../shared/datasets")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if a.carve:
        from .sentiment import CARVED, dev_side

        if a.carve not in CARVED:
            p.error(f"--carve: {a.carve!r} has a dev file of its own or is unknown; carved sources: {sorted(CARVED)}")
        import random

        pairs = dev_side(a.datasets, a.carve)
        random.Random(13).shuffle(pairs)  # labels mixed, so that --limit N reads a sample of both
        write_tsv(pairs, a.out)
        print(f"{len(pairs)} dev lines carved out of {a.carve} -> {a.out}")
        return
    if not (a.dev and a.train):
        p.error("--dev and --train are required (or --carve SOURCE)")
    kept, total = write_unseen(a.dev, a.train, a.out)
    print(f"{kept} of {total} dev lines are in no train file -> {a.out}")


if __name__ == "__main__":
    main()
