"""Lexicon features: every dictionary word covering a character marks it B, M or E in its category."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from zhie.text.lexicon import Lexicon

WORDS = {"北京": 0b010, "北京大学": 0b100, "张伟": 0b001, "大学": 0b1000, "京大": 0b1000}


def lex() -> Lexicon:
    return Lexicon(dict(WORDS))


def col(cat: str, pos: str) -> int:
    return 3 * ("PER", "LOC", "ORG", "WORD").index(cat) + "BME".index(pos)


def test_every_word_is_matched_nested_and_overlapping():
    text = "张伟在北京大学"
    got = {(text[s:e], m) for s, e, m in lex().matches(text)}
    assert got == {("张伟", 0b001), ("北京", 0b010), ("北京大学", 0b100), ("大学", 0b1000), ("京大", 0b1000)}


def test_features_mark_begin_middle_end_per_category():
    text = "张伟在北京大学"
    f = lex().features(text)
    assert f.shape == (7, 12) and f.dtype == np.float32
    assert f[0, col("PER", "B")] == 1 and f[1, col("PER", "E")] == 1 and f[2].sum() == 0  # 在: no word
    assert f[3, col("LOC", "B")] == 1 and f[4, col("LOC", "E")] == 1
    assert f[3, col("ORG", "B")] == 1 and f[4, col("ORG", "M")] == 1 and f[5, col("ORG", "M")] == 1 and f[6, col("ORG", "E")] == 1
    assert f[4, col("WORD", "B")] == 1 and f[5, col("WORD", "E")] == 1 and f[5, col("WORD", "B")] == 1  # 京大 and 大学
    assert f[:, col("PER", "M")].sum() == 0


def test_save_and_load_round_trip(tmp_path):
    path = tmp_path / "lex.tsv"
    lex().save(path)
    back = Lexicon.load(path)
    assert back.words == WORDS
    only_names = Lexicon.load(path, ("PER", "LOC", "ORG"))
    assert only_names.dim == 9 and "大学" not in only_names.words


@given(st.text(alphabet="张伟在北京大学京x😀 ", max_size=40))
def test_features_line_up_with_any_text(text):
    f = lex().features(text)
    assert f.shape == (len(text), 12)
    for s, e, _ in lex().matches(text):
        assert text[s:e] in WORDS  # what is matched is in the dictionary, at its offsets
