"""Property tests for zhie.text.normalize: one code point in, one code point out."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from zhie.text.normalize import normalize, normalize_char

SETTINGS = settings(max_examples=200, deadline=None)

# --- strategies -------------------------------------------------------------------------------

lone_surrogates = st.integers(0xD800, 0xDFFF).map(chr)
emoji = st.sampled_from(["😀", "👨‍👩‍👧", "👍🏽", "🇨🇳", "\U0001f600", "\u2764\ufe0f"])
combining = st.sampled_from(["e\u0301", "\u0301", "a\u0308\u0304", "\u3099", "\u304b\u3099"])
zero_width = st.sampled_from(["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u00ad"])
line_breaks = st.sampled_from(["\r", "\n", "\r\n", "\u2028", "\u2029", "\x85", "\t", "\x0b", "\x0c"])
full_width = st.sampled_from(["Ｈｅｌｌｏ１２３", "Ａ１，", "（ＩＢＭ）", "！？：；", "　", "ｱｲｳ", "㈱", "①"])
cjk = st.sampled_from(["北京", "张三", "联合国", "中华人民共和国", "兀", "\uf900", "\u2f00"])
latin_digits = st.text(alphabet="abcXYZ0189 -_.,", max_size=8)
astral = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF)
any_char = st.characters(codec=None, categories=None)  # every code point incl. surrogates

pieces = st.one_of(
    st.text(max_size=6),
    lone_surrogates,
    emoji,
    combining,
    zero_width,
    line_breaks,
    full_width,
    cjk,
    latin_digits,
    astral.map(str),
    any_char.map(str),
)
mixed_text = st.lists(pieces, max_size=12).map("".join)
texts = st.one_of(st.text(), mixed_text, st.text(alphabet=any_char))


# --- properties -------------------------------------------------------------------------------


@SETTINGS
@given(texts)
def test_normalize_preserves_length(t):
    assert len(normalize(t)) == len(t)


@SETTINGS
@given(texts)
@example("Apple\tInc\r\n")  # ASCII-only text takes a fast path that must agree with the slow one
@example("Apple\tInc\r\n公司")
def test_normalize_is_per_code_point(t):
    """Position i of the output depends only on position i of the input, so offsets carry over."""
    out = normalize(t)
    assert out == "".join(normalize_char(c) for c in t)


@SETTINGS
@given(mixed_text, mixed_text)
def test_normalize_commutes_with_concatenation(a, b):
    # a purely ASCII half must not be treated differently from the same half next to CJK text
    assert normalize(a + b) == normalize(a) + normalize(b)


@SETTINGS
@given(texts)
def test_normalize_is_idempotent(t):
    # holds for every single code point (checked exhaustively below), hence for every text
    once = normalize(t)
    assert normalize(once) == once


def test_normalize_char_idempotent_for_every_code_point():
    bad = [cp for cp in range(0x110000) if normalize_char(normalize_char(chr(cp))) != normalize_char(chr(cp))]
    assert bad == []


@SETTINGS
@given(texts)
def test_normalize_output_differs_only_where_nfkc_is_one_code_point(t):
    out = normalize(t)
    for c, o in zip(t, out):
        if o == c:
            continue
        if o == " ":
            assert c.isspace()
        else:
            assert unicodedata.normalize("NFKC", c) == o


@SETTINGS
@given(st.lists(st.one_of(lone_surrogates, emoji, zero_width, combining), min_size=1).map("".join))
def test_normalize_keeps_surrogates_emoji_zero_width_and_combining_marks(t):
    # none of these has a one-code-point NFKC form different from itself (or they expand/vanish)
    assert normalize(t) == t


@pytest.mark.parametrize(
    "src, want",
    [
        ("Ａ１，", "A1,"),
        ("Ｈｅｌｌｏ１２３", "Hello123"),
        ("（ＩＢＭ）公司", "(IBM)公司"),
        ("！？：；［］", "!?:;[]"),
        ("ｱｲｳ", "アイウ"),  # half-width katakana -> full-width
        ("\uf900", "\u8c48"),  # CJK compatibility ideograph -> unified
        ("\u2f00", "\u4e00"),  # Kangxi radical one -> 一
        ("北京ＡＢＣ", "北京ABC"),
    ],
)
def test_normalize_full_width_to_half_width(src, want):
    assert normalize(src) == want


@pytest.mark.parametrize(
    "src, want",
    [
        ("㈱", "㈱"),  # NFKC expands to (株): kept as is
        ("①", "1"),  # single-code-point NFKC form
        ("ﬁ", "ﬁ"),  # ligature expands to "fi": kept
        ("e\u0301", "e\u0301"),  # no composition across code points
        ("\u00e9", "\u00e9"),
        ("\u200b\u200d\ufeff", "\u200b\u200d\ufeff"),  # zero-width kept, never dropped
        ("😀👨‍👩‍👧", "😀👨‍👩‍👧"),
        ("\ud800x\udfff", "\ud800x\udfff"),
    ],
)
def test_normalize_keeps_expanding_or_vanishing_characters(src, want):
    assert normalize(src) == want
    assert len(normalize(src)) == len(src)


WHITESPACE = [chr(cp) for cp in range(0x110000) if chr(cp).isspace()]


@pytest.mark.parametrize("ws", WHITESPACE, ids=[f"U+{ord(c):04X}" for c in WHITESPACE])
def test_normalize_maps_every_whitespace_to_space(ws):
    assert normalize(ws) == " "
    assert normalize(f"张{ws}三") == "张 三"
    assert normalize(f"a{ws}b") == "a b"  # ASCII-only text included


def test_normalize_ideographic_space_and_line_breaks():
    assert normalize("北京\u3000上海") == "北京 上海"
    assert normalize("line1\r\nline2") == "line1  line2"
    assert normalize("第一行\r\n第二行") == "第一行  第二行"
    assert normalize("a\tb") == normalize("a\tb中")[:3]


@SETTINGS
@given(st.text(alphabet=st.characters(max_codepoint=0x7F, codec=None, categories=None)))
def test_normalize_ascii_only_changes_whitespace(t):
    out = normalize(t)
    assert out.isascii()
    assert all(o == c or (c.isspace() and o == " ") for c, o in zip(t, out))
