"""Readers for the corpora in ``shared/datasets``: every reader yields ``Doc`` with gold entities
in character offsets, whatever the file's own format."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..text.tags import bio_to_spans, bmes_to_spans
from ..text.types import Doc, Entity

NER_FORMATS = ("bio", "bmes", "weibo", "cluener")


def _column_sentences(path: Path, strip_mark: bool) -> Iterator[tuple[list[str], list[str]]]:
    chars: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8-sig") as f:
        for raw in f:
            line = raw.rstrip("\r\n")
            if not line.strip():
                if chars:
                    yield chars, tags
                chars, tags = [], []
                continue
            parts = line.split("\t") if "\t" in line else line.split()
            if len(parts) < 2:
                if line.startswith(("\t", " ")) and parts:  # a white-space character itself
                    parts = [" ", parts[-1]]
                else:
                    raise ValueError(f"{path}: cannot read line {raw!r}")
            ch, tag = parts[0], parts[-1]
            if strip_mark and len(ch) > 1 and ch[-1].isdigit():
                ch = ch[:-1]
            if len(ch) != 1:
                # a multi-character token: keep offsets exact by expanding it
                for j, c in enumerate(ch):
                    chars.append(c)
                    p, _, t = tag.partition("-")
                    tags.append(tag if j == 0 or tag == "O" else f"{'I' if p in 'BI' else p}-{t}")
                continue
            chars.append(ch)
            tags.append(tag)
    if chars:
        yield chars, tags


def _docs_from_columns(path: Path, scheme: str, strip_mark: bool) -> Iterator[Doc]:
    decode = bio_to_spans if scheme == "bio" else bmes_to_spans
    for chars, tags in _column_sentences(path, strip_mark):
        text = "".join(chars)
        yield Doc(text, [Entity(t, text[s:e], s, e) for t, s, e in decode(tags)])


def read_cluener(path: Path) -> Iterator[Doc]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            obj = json.loads(line)
            text = obj["text"]
            ents = []
            for typ, mentions in (obj.get("label") or {}).items():
                for mention, spans in mentions.items():
                    for s, e in spans:
                        if text[s : e + 1] != mention:
                            raise ValueError(f"{path}: span {s},{e} is not {mention!r} in {text!r}")
                        ents.append(Entity(typ, mention, s, e + 1))
            ents.sort(key=lambda x: (x.start, x.end))
            yield Doc(text, ents)


def read_ner(path: str | Path, fmt: str) -> list[Doc]:
    path = Path(path)
    if fmt == "bio":
        return list(_docs_from_columns(path, "bio", strip_mark=False))
    if fmt == "bmes":
        return list(_docs_from_columns(path, "bmes", strip_mark=False))
    if fmt == "weibo":
        return list(_docs_from_columns(path, "bio", strip_mark=True))
    if fmt == "cluener":
        return list(read_cluener(path))
    raise ValueError(f"unknown NER format {fmt!r}; expected one of {NER_FORMATS}")


def parse_map(spec: str | None) -> dict[str, str] | None:
    """``--map`` of the NER evaluations: "FROM=TO,FROM=TO" as a dict (None when empty)."""
    if not spec:
        return None
    out = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise SystemExit(f"--map: expected FROM=TO pairs separated by commas, got {part!r}")
        src, dst = part.split("=", 1)
        out[src.strip()] = dst.strip()
    return out


def map_types(docs: Sequence[Doc], mapping: dict[str, str] | None) -> list[Doc]:
    """Rename gold types; with a mapping, keep only entities whose type it maps."""
    if not mapping:
        return list(docs)
    out = []
    for d in docs:
        ents = [Entity(mapping[e.type], e.text, e.start, e.end, e.score) for e in d.entities if e.type in mapping]
        out.append(Doc(d.text, ents))
    return out


def mention_pool(docs: Sequence[Doc], max_len: int = 16) -> dict[str, list[str]]:
    """The distinct surface forms of each entity type in ``docs`` (sorted, so a seed fixes every draw);
    forms longer than ``max_len`` or holding whitespace are left out."""
    pool: dict[str, set[str]] = {}
    for d in docs:
        for e in d.entities:
            if len(e.text) <= max_len and not any(c.isspace() for c in e.text):
                pool.setdefault(e.type, set()).add(e.text)
    return {t: sorted(v) for t, v in pool.items()}


def replace_mentions(docs: Sequence[Doc], prob: float, seed: int,
                     pool: dict[str, list[str]] | None = None) -> tuple[list[Doc], int]:
    """Mention-replacement augmentation (Dai & Adel, 2020): each entity is swapped, with probability
    ``prob``, for a surface form of the same type drawn uniformly from ``pool`` (by default the distinct
    forms of ``docs``), so a model reads the context a name stands in, not the name it memorised. Uniform
    over distinct forms, not over mentions, so rare names come up as often as frequent ones. Offsets of the
    entities after a swap move with it; the text between entities is kept. Returns (docs, swaps)."""
    pool = mention_pool(docs) if pool is None else pool
    rng = random.Random(seed)
    out, swaps = [], 0
    for d in docs:
        if not d.entities or prob <= 0:
            out.append(d)
            continue
        parts, ents, pos, shift = [], [], 0, 0
        for e in sorted(d.entities, key=lambda e: e.start):
            if e.start < pos:  # overlapping gold (none of the corpora here has it): keep the doc as it is
                parts, ents = None, None
                break
            forms = pool.get(e.type)
            new = e.text
            if forms and rng.random() < prob:
                new = forms[rng.randrange(len(forms))]
                swaps += new != e.text
            parts.append(d.text[pos : e.start])
            parts.append(new)
            start = e.start + shift
            ents.append(Entity(e.type, new, start, start + len(new), e.score))
            shift += len(new) - (e.end - e.start)
            pos = e.end
        if parts is None:
            out.append(d)
            continue
        parts.append(d.text[pos:])
        out.append(Doc("".join(parts), ents))
    return out, swaps


DEV_SPLITS = ("contiguous", "random")
DEV_BLOCKS = 10  # a carved dev split is this many contiguous blocks (fewer when the file is small)


def split_dev(items: Sequence, fraction: float = 0.05, seed: int = 13, mode: str = "contiguous", *,
              blocks: int = DEV_BLOCKS, doc_of: Callable[[object], object] | None = None) -> tuple[list, list]:
    """Deterministic (train, dev) split carved from a training file; dev is never trained on.

    ``contiguous`` (the dev protocol since issue 22): the items are cut into runs of consecutive
    items, whole documents where ``doc_of(item)`` names them (consecutive items with the same key),
    else blocks of about ``fraction * len(items) / blocks`` items, and ``blocks`` of those runs,
    drawn with ``seed``, are dev: about ``fraction`` of the items. Neighbouring sentences of one
    article share their names, so a dev sentence whose neighbours are trained on measures
    memorisation (84 % of the mentions of MSRA's random 5 % occur in the rest of its train file,
    57 % for a contiguous block). ``random``: the old split, ``fraction`` of single items drawn with
    ``seed``, kept only to compare with figures measured on it before. Both keep the file's order."""
    n = len(items)
    if mode == "random":
        idx = list(range(n))
        random.Random(seed).shuffle(idx)
        dev_idx = set(idx[: max(1, int(round(n * fraction)))])
    elif mode == "contiguous":
        dev_idx = set(_contiguous_dev(items, fraction, seed, blocks, doc_of))
    else:
        raise ValueError(f"unknown dev split {mode!r}; expected one of {DEV_SPLITS}")
    train = [items[i] for i in range(n) if i not in dev_idx]
    dev = [items[i] for i in sorted(dev_idx)]
    return train, dev


def _contiguous_dev(items: Sequence, fraction: float, seed: int, blocks: int, doc_of) -> list[int]:
    n = len(items)
    if n == 0:
        return []
    target = max(1, int(round(n * fraction)))
    if doc_of is not None:  # runs of one document each
        runs, start = [], 0
        for i in range(1, n + 1):
            if i == n or doc_of(items[i]) != doc_of(items[start]):
                runs.append((start, i))
                start = i
        order = list(range(len(runs)))
        random.Random(seed).shuffle(order)
        out: list[int] = []
        for r in order:  # whole documents until the fraction is reached
            if len(out) >= target:
                break
            out.extend(range(*runs[r]))
        return out
    blocks = max(1, min(blocks, target))
    size = max(1, -(-target // blocks))  # ceil
    slots = max(1, n // size)
    chosen = sorted(random.Random(seed).sample(range(slots), min(blocks, slots)))
    out = [i for b in chosen for i in range(b * size, min(n, (b + 1) * size))]
    return out[: max(target, 1)] if len(out) > target else out
