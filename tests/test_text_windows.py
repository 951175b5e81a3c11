"""Tests for zhie.text.windows.make_windows and the seam stitching that zhie.tasks.ner relies on."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from zhie.text.tags import bio_to_spans
from zhie.text.windows import Window, make_windows

SETTINGS = settings(max_examples=200, deadline=None)
INF = float("inf")


@st.composite
def window_args(draw, max_n=5000):
    size = draw(st.integers(1, 300))
    overlap = draw(st.integers(0, size - 1))
    n = draw(st.one_of(st.integers(0, max_n), st.integers(max(0, size - 2), size + 3)))
    return n, size, overlap


def _context(w: Window, p: int, n: int) -> float:
    """Characters the window sees on the tighter side of position p (a text edge counts as unlimited)."""
    left = INF if w.start == 0 else p - w.start
    right = INF if w.end == n else w.end - 1 - p
    return min(left, right)


@SETTINGS
@given(window_args())
@example((0, 1, 0))
@example((1, 1, 0))
@example((5000, 1, 0))
@example((5000, 300, 299))
@example((301, 300, 299))
@example((10, 3, 2))
def test_windows_cover_text_and_tile_owned_regions(args):
    n, size, overlap = args
    wins = make_windows(n, size, overlap)
    assert wins, "at least one window, even for empty text"
    # windows: inside the text, at most `size` long, in order, covering [0, n)
    assert wins[0].start == 0 and wins[-1].end == n
    for w in wins:
        assert 0 <= w.start <= w.end <= n
        assert w.end - w.start <= size
    for a, b in zip(wins, wins[1:]):
        assert a.start < b.start and a.end < b.end
        assert b.start <= a.end, "gap between windows"
    # owned regions tile [0, n) exactly, in order, each inside its window and non-empty
    assert wins[0].own_start == 0 and wins[-1].own_end == n
    for a, b in zip(wins, wins[1:]):
        assert a.own_end == b.own_start
    for w in wins:
        assert w.start <= w.own_start <= w.own_end <= w.end
        assert w.own_start < w.own_end or n == 0
    owned = [p for w in wins for p in range(w.own_start, w.own_end)]
    assert owned == list(range(n))


@SETTINGS
@given(window_args())
def test_windows_shape_when_text_is_longer_than_window(args):
    n, size, overlap = args
    wins = make_windows(n, size, overlap)
    if n <= size:
        assert wins == [Window(0, n, 0, n)]
        return
    # every window is full size, neighbours share at least `overlap`, and no more windows than needed
    assert all(w.end - w.start == size for w in wins)
    stride = size - overlap
    for a, b in zip(wins, wins[1:]):
        assert a.end - b.start >= overlap
        assert b.start - a.start <= stride
    assert len(wins) == 1 + -(-(n - size) // stride)  # ceil((n - size) / stride) further windows


@SETTINGS
@given(window_args())
@example((1000, 128, 32))
@example((1000, 128, 33))
@example((300, 100, 99))
def test_windows_seams_sit_mid_overlap_with_context_on_both_sides(args):
    """Each seam lies in the middle of the shared stretch: the left window keeps ceil(L/2) characters of
    right context after its owned part, the right window floor(L/2) of left context, where L >= overlap is
    the actual overlap. So every window has >= overlap//2 context on each side of what it owns, except at
    the text edges."""
    n, size, overlap = args
    wins = make_windows(n, size, overlap)
    for i, (a, b) in enumerate(zip(wins, wins[1:])):
        shared = a.end - b.start
        assert shared >= overlap
        assert a.end - a.own_end == (shared + 1) // 2
        assert b.own_start - b.start == shared // 2
    for i, w in enumerate(wins):
        if i > 0:
            assert w.own_start - w.start >= overlap // 2
        else:
            assert w.own_start == w.start == 0
        if i < len(wins) - 1:
            assert w.end - w.own_end >= (overlap + 1) // 2
        else:
            assert w.own_end == w.end == n


@settings(max_examples=120, deadline=None)
@given(window_args(max_n=600))
def test_windows_owner_is_the_window_with_most_context(args):
    """Every position is decided by a window in which it lies as far from an edge as in any other window."""
    n, size, overlap = args
    wins = make_windows(n, size, overlap)
    for w in wins:
        for p in range(w.own_start, w.own_end):
            mine = _context(w, p, n)
            for v in wins:
                if v.start <= p < v.end:
                    assert _context(v, p, n) <= mine, (p, w, v)


@pytest.mark.parametrize(
    "n, size, overlap",
    [(10, 0, 0), (10, -1, 0), (10, 5, 5), (10, 5, 6), (10, 5, -1), (0, 0, 0), (10, 1, 1)],
)
def test_windows_invalid_arguments_raise(n, size, overlap):
    with pytest.raises(ValueError):
        make_windows(n, size, overlap)


def test_windows_hand_example():
    wins = make_windows(10, 6, 2)
    assert wins == [Window(0, 6, 0, 5), Window(4, 10, 5, 10)]
    wins = make_windows(12, 5, 2)
    # starts 0, 3, 6 and the last one flush with the end (7); seams in the middle of each overlap
    assert [(w.start, w.end) for w in wins] == [(0, 5), (3, 8), (6, 11), (7, 12)]
    assert [(w.own_start, w.own_end) for w in wins] == [(0, 4), (4, 7), (7, 9), (9, 12)]


# --- stitching ----------------------------------------------------------------------------------

TYPES = ("PER", "LOC", "ORG")
LABELS = ["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"]


@st.composite
def bio_sequence(draw, max_len=400):
    """A tag sequence with long entities (so they cross seams) and some ill-formed I- starts."""
    n = draw(st.integers(0, max_len))
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    tags: list[str] = []
    while len(tags) < n:
        r = rnd.random()
        if r < 0.4:
            tags += ["O"] * rnd.randint(1, 8)
        elif r < 0.95:
            t = rnd.choice(TYPES)
            tags += [f"B-{t}"] + [f"I-{t}"] * rnd.randint(0, 25)
        else:
            tags.append(rnd.choice(LABELS))  # arbitrary, possibly an orphan I-
    return tags[:n]


def stitch(n: int, wins: list[Window], window_tags: list[list[str]]) -> list[str]:
    """What zhie.tasks.ner.predict does: each window writes only the positions it owns."""
    full: list[str | None] = [None] * n
    for w, tg in zip(wins, window_tags):
        a, b = w.own_start - w.start, w.own_end - w.start
        full[w.own_start : w.own_end] = tg[a:b]
    assert None not in full
    return full  # type: ignore[return-value]


@SETTINGS
@given(bio_sequence(), st.integers(1, 60), st.data())
def test_windows_stitching_preserves_spans_across_seams(tags, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    n = len(tags)
    wins = make_windows(n, size, overlap)
    rnd = random.Random(data.draw(st.integers(0, 2**32 - 1)))
    # each window agrees with the truth where it decides; outside its owned part it may say anything
    window_tags = []
    for w in wins:
        tg = list(tags[w.start : w.end])
        for j in range(w.end - w.start):
            if not (w.own_start <= w.start + j < w.own_end) and rnd.random() < 0.5:
                tg[j] = rnd.choice(LABELS)
        window_tags.append(tg)
    stitched = stitch(n, wins, window_tags)
    assert stitched == tags
    spans = bio_to_spans(stitched)
    assert spans == bio_to_spans(tags)
    # no entity is reported twice, and spans don't overlap
    assert len(set(spans)) == len(spans)
    for (_, _, e1), (_, s2, _) in zip(spans, spans[1:]):
        assert e1 <= s2


def test_windows_stitching_entity_crossing_a_seam_comes_out_once():
    tags = ["O"] * 3 + ["B-ORG"] + ["I-ORG"] * 5 + ["O"] * 3  # ORG at [3, 9), n = 12
    wins = make_windows(12, 6, 2)  # seam at 5: inside the entity
    assert any(w.own_start == 5 for w in wins)
    stitched = stitch(12, wins, [tags[w.start : w.end] for w in wins])
    assert bio_to_spans(stitched) == [("ORG", 3, 9)]
    # reading spans per window instead would split and duplicate it: the reason ner stitches first
    per_window = [(t, s + w.start, e + w.start) for w in wins for t, s, e in bio_to_spans(tags[w.start : w.end])]
    assert per_window != [("ORG", 3, 9)]
