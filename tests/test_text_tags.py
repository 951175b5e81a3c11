"""Tests for zhie.text.tags: BIO and BMES tag sequences to and from character spans."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhie.text.tags import bio_labels, bio_to_spans, bmes_to_spans, spans_to_bio

SETTINGS = settings(max_examples=200, deadline=None)
TYPES = ["PER", "LOC", "ORG"]


@st.composite
def disjoint_spans(draw, max_len=80, types=st.sampled_from(TYPES), length=None):
    """(length, spans): sorted non-overlapping spans (possibly adjacent) within [0, length)."""
    if length is None:
        length = draw(st.integers(0, max_len))
    cuts = sorted(draw(st.lists(st.integers(0, length), max_size=20)))
    spans = []
    prev_end = 0
    for a, b in zip(cuts[::2], cuts[1::2]):
        a = max(a, prev_end)
        if a < b:
            spans.append((draw(types), a, b))
            prev_end = b
    return length, spans


def test_tags_bio_labels():
    assert bio_labels(TYPES) == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    assert bio_labels([]) == ["O"]


@SETTINGS
@given(disjoint_spans())
def test_tags_bio_roundtrip(args):
    length, spans = args
    tags = spans_to_bio(length, spans)
    assert len(tags) == length
    assert all(t in bio_labels(TYPES) for t in tags)
    assert bio_to_spans(tags) == spans
    # and tags -> spans -> tags is the identity for well-formed tags
    assert spans_to_bio(length, bio_to_spans(tags)) == tags


@SETTINGS
@given(disjoint_spans(), st.randoms(use_true_random=False))
def test_tags_bio_roundtrip_ignores_span_order(args, rnd):
    length, spans = args
    shuffled = list(spans)
    rnd.shuffle(shuffled)
    assert spans_to_bio(length, shuffled) == spans_to_bio(length, spans)


def test_tags_spans_to_bio_adjacent_and_overlapping():
    assert spans_to_bio(4, [("PER", 0, 2), ("PER", 2, 4)]) == ["B-PER", "I-PER", "B-PER", "I-PER"]
    assert bio_to_spans(["B-PER", "I-PER", "B-PER", "I-PER"]) == [("PER", 0, 2), ("PER", 2, 4)]
    # overlapping gold: the first one wins, the other is dropped whole (no half-written entity)
    assert spans_to_bio(5, [("ORG", 0, 4), ("LOC", 2, 5)]) == ["B-ORG", "I-ORG", "I-ORG", "I-ORG", "O"]
    assert spans_to_bio(5, [("LOC", 2, 5), ("ORG", 0, 4)]) == ["O", "O", "B-LOC", "I-LOC", "I-LOC"]
    assert spans_to_bio(3, []) == ["O", "O", "O"]
    assert spans_to_bio(0, []) == []


@pytest.mark.parametrize(
    "tags, want",
    [
        ([], []),
        (["O", "O"], []),
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
        (["I-PER", "I-PER", "O"], [("PER", 0, 2)]),  # IOB1: an I- with nothing open starts an entity
        (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),  # type change starts a new one
        (["B-ORG", "B-ORG"], [("ORG", 0, 1), ("ORG", 1, 2)]),
        (["O", "I-ORG"], [("ORG", 1, 2)]),
        (["b-per", "i-per"], [("per", 0, 2)]),  # prefix is case-insensitive, type kept verbatim
        (["B-PER", "X", "I-PER"], [("PER", 0, 1), ("PER", 2, 3)]),  # unknown tag closes like O
    ],
)
def test_tags_bio_to_spans_hand_examples(tags, want):
    assert bio_to_spans(tags) == want


@pytest.mark.parametrize(
    "tags, want",
    [
        ([], []),
        (["B-PER", "M-PER", "E-PER"], [("PER", 0, 3)]),
        (["B-PER", "E-PER"], [("PER", 0, 2)]),
        (["S-LOC"], [("LOC", 0, 1)]),
        (["O", "S-LOC", "S-LOC", "O"], [("LOC", 1, 2), ("LOC", 2, 3)]),
        (["B-PER", "I-PER", "E-PER"], [("PER", 0, 3)]),  # BIOES uses I for the middle
        (["B-ORG", "I-ORG", "I-ORG", "E-ORG", "O", "S-PER"], [("ORG", 0, 4), ("PER", 5, 6)]),
        (["B-PER", "M-PER", "M-PER", "E-PER", "B-LOC", "E-LOC"], [("PER", 0, 4), ("LOC", 4, 6)]),
        # ill-formed input: keep what was begun rather than losing it
        (["B-PER", "M-PER"], [("PER", 0, 2)]),  # no E at the end
        (["E-PER"], [("PER", 0, 1)]),  # E with nothing open
        (["M-LOC", "E-LOC"], [("LOC", 0, 2)]),  # M with nothing open starts one
    ],
)
def test_tags_bmes_to_spans_hand_examples(tags, want):
    assert bmes_to_spans(tags) == want


def spans_to_bmes(length, spans):
    tags = ["O"] * length
    for t, s, e in spans:
        if e - s == 1:
            tags[s] = f"S-{t}"
        else:
            tags[s] = f"B-{t}"
            for i in range(s + 1, e - 1):
                tags[i] = f"M-{t}"
            tags[e - 1] = f"E-{t}"
    return tags


@SETTINGS
@given(disjoint_spans())
def test_tags_bmes_roundtrip(args):
    length, spans = args
    assert bmes_to_spans(spans_to_bmes(length, spans)) == spans
    bioes = [t.replace("M-", "I-") for t in spans_to_bmes(length, spans)]
    assert bmes_to_spans(bioes) == spans


CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
texts = st.text(alphabet=st.one_of(CJK, st.characters(codec=None, categories=None)), max_size=60)


@SETTINGS
@given(texts, st.data())
def test_tags_spans_index_the_text(text, data):
    """Spans from any tag sequence are valid [start, end) code point ranges of the text they tag."""
    n = len(text)
    scheme = data.draw(st.sampled_from(["bio", "bmes"]))
    alphabet = bio_labels(TYPES) if scheme == "bio" else ["O"] + [f"{p}-{t}" for t in TYPES for p in "BMESI"]
    tags = data.draw(st.lists(st.sampled_from(alphabet), min_size=n, max_size=n))
    spans = (bio_to_spans if scheme == "bio" else bmes_to_spans)(tags)
    covered = set()
    for typ, s, e in spans:
        assert typ in TYPES
        assert 0 <= s < e <= n
        piece = text[s:e]
        assert len(piece) == e - s
        assert piece == "".join(text[i] for i in range(s, e))
        if scheme == "bio":
            assert tags[s][2:] == typ and tags[s][0] in "BI"
            assert all(t == f"I-{typ}" for t in tags[s + 1 : e])
            assert not covered & set(range(s, e))  # BIO spans never overlap
        covered |= set(range(s, e))
    if scheme == "bio":
        # every non-O tag is part of some span (BMES drops a B-/M- run closed by O, S- or B-: not asserted)
        assert {i for i, t in enumerate(tags) if t != "O"} <= covered


@SETTINGS
@given(texts, st.data())
def test_tags_gold_spans_survive_bio_on_text(text, data):
    """Entities taken from a text come back with the same characters after BIO encoding."""
    n = len(text)
    _, spans = data.draw(disjoint_spans(length=n))
    entities = [(t, s, e, text[s:e]) for t, s, e in spans]
    back = [(t, s, e, text[s:e]) for t, s, e in bio_to_spans(spans_to_bio(n, spans))]
    assert back == entities
