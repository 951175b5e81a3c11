"""Long text: overlapping windows, and the seams where one window's responsibility ends.

A text of ``n`` code points is cut into windows of at most ``size`` with ``overlap`` shared
code points between neighbours. Every position is *owned* by exactly one window: the one for
which it lies farthest from an edge (the seam sits in the middle of each overlap), so each
window decides only positions where it has at least ``overlap // 2`` characters of context on
both sides. Decoded tags are stitched from the owned parts and spans are read once from the
stitched sequence, so an entity that crosses a seam comes out whole and never twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# a sentence starts after one of these (and any closing quotes/brackets that follow it)
_SENTENCE_END = re.compile(r"[。！？!?；;…\n]+[”’」』）)\]】]*")


@dataclass(frozen=True, slots=True)
class Window:
    start: int  # first code point the model sees
    end: int  # one past the last code point the model sees
    own_start: int  # first code point this window decides
    own_end: int  # one past the last code point this window decides


def _single(n: int, size: int, overlap: int) -> bool:
    """Check the window arguments; True when one window holds the whole text."""
    if size < 1:
        raise ValueError("window size must be at least 1")
    if not 0 <= overlap < size:
        raise ValueError("window overlap must be >= 0 and smaller than the window size")
    return n <= size


def make_windows(n: int, size: int, overlap: int) -> list[Window]:
    if _single(n, size, overlap):
        return [Window(0, n, 0, n)]
    stride = size - overlap
    starts = list(range(0, n - size, stride)) + [n - size]
    if len(starts) > 1 and starts[-1] == starts[-2]:
        starts.pop()
    wins = []
    for i, s in enumerate(starts):
        e = s + size
        own_s = 0 if i == 0 else (s + (starts[i - 1] + size)) // 2
        own_e = n if i == len(starts) - 1 else (starts[i + 1] + e) // 2
        wins.append((s, e, own_s, own_e))
    # seams must tile [0, n) exactly
    out = []
    for i, (s, e, own_s, own_e) in enumerate(wins):
        if i > 0:
            own_s = out[-1].own_end
        out.append(Window(s, e, own_s, own_e))
    return out


def sentence_starts(text: str) -> list[int]:
    """Positions where a new sentence begins (after 。！？；… or a line break), in order."""
    return [m.end() for m in _SENTENCE_END.finditer(text) if m.end() < len(text)]


def make_windows_at(n: int, size: int, overlap: int, breaks: Sequence[int], cum: Sequence[int] | None = None) -> list[Window]:
    """Windows that start at a sentence start wherever one lies in reach, so the model reads whole
    sentences as it did in training. Each window still holds at most ``size`` code points and
    shares at least ``overlap`` with the previous one; each step advances at least
    ``(size - overlap) // 2``, so there are at most about twice as many windows as without breaks.
    Seams sit mid-overlap, as in ``make_windows``.

    ``cum``: the positions are units of unequal cost (words of several WordPiece tokens): ``cum[i]`` is
    the cost of units ``[0, i)`` (length ``n + 1``), and a window holds at most ``size`` of cost (at
    least one unit). ``overlap`` stays in units. Without it every unit costs 1.
    """
    import bisect

    if cum is None:
        if _single(n, size, overlap):
            return [Window(0, n, 0, n)]

        def reach(s: int) -> int:
            return s + size

        back = n - size
    else:
        if len(cum) != n + 1:
            raise ValueError("cum must hold n + 1 cumulative costs")
        _single(0, size, overlap)
        if cum[n] - cum[0] <= size:
            return [Window(0, n, 0, n)] if n else [Window(0, 0, 0, 0)]

        def reach(s: int) -> int:
            return max(s + 1, bisect.bisect_right(cum, cum[s] + size) - 1)

        back = bisect.bisect_left(cum, cum[n] - size)  # the first start whose window ends at n

    starts = [0]
    while reach(starts[-1]) < n:
        s = starts[-1]
        e = reach(s)
        ov = min(overlap, e - s - 1)
        min_step = max(1, (e - s - ov) // 2)
        lo, hi = s + min_step, e - ov  # a next start in [lo, hi] keeps progress and overlap
        j = bisect.bisect_right(breaks, hi) - 1
        nxt = breaks[j] if j >= 0 and breaks[j] >= lo else hi
        starts.append(min(nxt, back) if reach(nxt) >= n and back > s else nxt)
    out: list[Window] = []
    for i, st in enumerate(starts):
        e = min(n, reach(st))
        own_s = 0 if i == 0 else out[-1].own_end
        own_e = n if i == len(starts) - 1 else (starts[i + 1] + e) // 2
        out.append(Window(st, e, own_s, own_e))
    return out
