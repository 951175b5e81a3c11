"""Tag schemes: BIO and BMES (a.k.a. BIOES with M for inside) to and from character spans."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def bio_labels(types: Sequence[str]) -> list[str]:
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def spans_to_bio(length: int, spans: Iterable[tuple[str, int, int]]) -> list[str]:
    tags = ["O"] * length
    for typ, start, end in spans:
        if any(t != "O" for t in tags[start:end]):
            continue  # overlapping gold spans cannot be expressed in BIO: first one wins
        tags[start] = f"B-{typ}"
        for i in range(start + 1, end):
            tags[i] = f"I-{typ}"
    return tags


def _split(tag: str) -> tuple[str, str]:
    if tag == "O" or "-" not in tag:
        return "O", ""
    p, _, t = tag.partition("-")
    return p.upper(), t


def bio_to_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Spans from BIO (or IOB1) tags. An I- that does not continue an entity of its type starts one."""
    spans: list[tuple[str, int, int]] = []
    cur_t, cur_s = None, -1
    for i, tag in enumerate(tags):
        p, t = _split(tag)
        if p == "I" and cur_t == t:
            continue
        if cur_t is not None:
            spans.append((cur_t, cur_s, i))
            cur_t = None
        if p in ("B", "I"):
            cur_t, cur_s = t, i
    if cur_t is not None:
        spans.append((cur_t, cur_s, len(tags)))
    return spans


def bmes_to_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Spans from BMES/BIOES tags (B begin, M or I middle, E end, S single).

    Lenient on ill-formed input, the same way everywhere: an entity that was begun and is
    interrupted (by O, S, a new B, or a tag of another type) or left open at the end is kept
    up to where it stopped; an E or M with nothing open starts an entity.
    """
    spans: list[tuple[str, int, int]] = []
    cur_t, cur_s = None, -1

    def close(i: int) -> None:
        nonlocal cur_t
        if cur_t is not None:
            spans.append((cur_t, cur_s, i))
            cur_t = None

    for i, tag in enumerate(tags):
        p, t = _split(tag)
        if p in ("M", "I", "E") and cur_t == t:
            if p == "E":
                close(i + 1)
            continue
        close(i)
        if p == "S":
            spans.append((t, i, i + 1))
        elif p in ("B", "M", "I"):
            cur_t, cur_s = t, i
        elif p == "E":
            spans.append((t, i, i + 1))
    close(len(tags))
    return spans
