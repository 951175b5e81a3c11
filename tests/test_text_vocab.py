"""Tests for zhie.text.vocab.CharVocab: one id per code point, UNK for the unknown, file roundtrip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhie.text.normalize import normalize
from zhie.text.vocab import BOS, EOS, PAD, SPECIALS, UNK, CharVocab, codepoints

SETTINGS = settings(max_examples=150, deadline=None)

any_char = st.characters(codec=None, categories=None)  # includes lone surrogates
lone_surrogate = st.integers(0xD800, 0xDFFF).map(chr)
astral = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF)
texts = st.one_of(
    st.text(),
    st.text(alphabet=any_char),
    st.lists(st.one_of(lone_surrogate, astral, st.sampled_from("北京张三 Ａ１a1\u200d😀é")), max_size=20).map("".join),
)

BASE_CHARS = [" ", "A", "1", "a", "北", "京", "张", "三", "😀", "\u200d"]


def make_vocab(chars=BASE_CHARS) -> CharVocab:
    return CharVocab(list(SPECIALS) + list(chars))


def test_vocab_special_ids_are_fixed():
    assert (BOS, PAD, EOS, UNK) == (0, 1, 2, 3)
    assert SPECIALS == ("<s>", "<pad>", "</s>", "<unk>")
    v = make_vocab()
    assert v.tokens[UNK] == "<unk>" and len(v) == 4 + len(BASE_CHARS)


@SETTINGS
@given(texts)
def test_vocab_encode_gives_one_id_per_code_point(t):
    v = make_vocab()
    ids = v.encode(t)
    assert ids.shape == (len(t),)
    assert ids.dtype == np.int64
    assert ((ids == UNK) | (ids >= 4)).all() and (ids < len(v)).all()
    # same on the raw (already "normalised") path
    assert v.encode(t, normalized=True).shape == (len(t),)


@SETTINGS
@given(texts)
def test_vocab_encode_matches_token_lookup(t):
    v = make_vocab()
    table = {c: i for i, c in enumerate(v.tokens) if i >= 4}
    want = [table.get(c, UNK) for c in normalize(t)]
    assert v.encode(t).tolist() == want
    assert v.encode(t, normalized=True).tolist() == [table.get(c, UNK) for c in t]


@SETTINGS
@given(st.lists(st.one_of(any_char, astral, lone_surrogate), unique=True, max_size=40), texts)
def test_vocab_encode_with_arbitrary_vocabulary(chars, t):
    v = CharVocab(list(SPECIALS) + chars)
    ids = v.encode(t, normalized=True)
    table = {c: i + 4 for i, c in enumerate(chars)}
    assert ids.tolist() == [table.get(c, UNK) for c in t]
    # every vocabulary character maps to its own row
    assert v.encode("".join(chars), normalized=True).tolist() == list(range(4, 4 + len(chars)))


def test_vocab_encode_unknown_chars_are_unk():
    v = make_vocab()
    assert v.encode("北X京", normalized=True).tolist() == [v.tokens.index("北"), UNK, v.tokens.index("京")]
    assert v.encode("\ud800\U0010ffff").tolist() == [UNK, UNK]
    assert v.encode("").tolist() == []
    assert CharVocab(list(SPECIALS)).encode("abc").tolist() == [UNK, UNK, UNK]
    # above and below every entry in the sorted code point table
    assert v.encode("\x00\U0001f601").tolist() == [UNK, UNK]


def test_vocab_encode_normalises_unless_told_not_to():
    v = make_vocab()
    a, one = v.tokens.index("A"), v.tokens.index("1")
    assert v.encode("Ａ１").tolist() == [a, one]
    assert v.encode("Ａ１", normalized=True).tolist() == [UNK, UNK]
    sp = v.tokens.index(" ")
    assert v.encode("北\u3000京\t").tolist() == [v.tokens.index("北"), sp, v.tokens.index("京"), sp]
    assert v.encode("A\tA").tolist() == [a, sp, a]  # ASCII-only text gets the same treatment


def test_vocab_astral_and_surrogate_entries_are_single_code_points():
    v = make_vocab(["😀", "\ud83d", "\U00020000"])
    assert v.encode("😀\ud83d\U00020000", normalized=True).tolist() == [4, 5, 6]
    assert codepoints("😀\ud83d").tolist() == [0x1F600, 0xD83D]
    # a ZWJ emoji sequence is several code points, hence several ids
    assert v.encode("👨‍👩‍👧").shape == (5,)


printable_char = st.characters(codec="utf-8").filter(lambda c: c.isprintable() or c == " ")


@SETTINGS
@given(st.lists(printable_char, unique=True, max_size=60))
def test_vocab_save_load_roundtrip(tmp_path_factory, chars):
    v = CharVocab(list(SPECIALS) + chars)
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    v.save(path)
    w = CharVocab.load(path)
    assert w.tokens == v.tokens
    probe = "".join(chars) + "\ufffe"
    assert w.encode(probe, normalized=True).tolist() == v.encode(probe, normalized=True).tolist()


@pytest.mark.parametrize(
    "chars",
    [[" "], [" ", "a", "北"], ["\u2581"], [" ", "\u2581"], ["\u2581", " ", "▂"], ["\u3000", "\u00a0", "\u2581"]],
)
def test_vocab_save_load_roundtrip_space_and_its_marker(tmp_path, chars):
    v = CharVocab(list(SPECIALS) + chars)
    v.save(tmp_path / "v.txt")
    lines = (tmp_path / "v.txt").read_text(encoding="utf-8").split("\n")
    assert " " not in lines  # a literal space is never written as a bare space line
    w = CharVocab.load(tmp_path / "v.txt")
    assert w.tokens == v.tokens
    assert w.encode("".join(chars), normalized=True).tolist() == list(range(4, 4 + len(chars)))


def test_vocab_load_reads_marker_as_space(tmp_path):
    (tmp_path / "v.txt").write_text("<s>\n<pad>\n</s>\n<unk>\n\u2581\n北\n", encoding="utf-8")
    v = CharVocab.load(tmp_path / "v.txt")
    assert v.tokens == list(SPECIALS) + [" ", "北"]
    assert v.encode("北 北").tolist() == [5, 4, 5]


@pytest.mark.parametrize(
    "tokens",
    [
        [],
        ["<s>", "<pad>", "</s>"],
        ["<pad>", "<s>", "</s>", "<unk>", "a"],
        ["<s>", "<pad>", "</s>", "<UNK>", "a"],
        ["a", "<s>", "<pad>", "</s>", "<unk>"],
        ["<s>", "<pad>", "</s>", "<unk>", "ab"],
        ["<s>", "<pad>", "</s>", "<unk>", ""],
        ["<s>", "<pad>", "</s>", "<unk>", "a", "<unk>"],
    ],
)
def test_vocab_bad_specials_or_entries_raise(tokens):
    with pytest.raises(ValueError):
        CharVocab(tokens)
