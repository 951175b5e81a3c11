"""Bigram features: each character reads the vector of the bigram it ends and of the one it begins."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhie.text.bigrams import EDGE, BigramTable, pairs


def table() -> BigramTable:
    keys = ["北京", "京大", EDGE + "北", "学" + EDGE]
    vectors = np.arange(5 * 3, dtype=np.float32).reshape(5, 3) + 1
    vectors[0] = 0
    return BigramTable(keys, vectors)


def test_each_character_reads_the_bigram_it_ends_and_the_one_it_begins():
    t = table()
    assert pairs("北京") == [EDGE + "北", "北京", "京" + EDGE]
    ids = t.ids("北京大学")
    # 北: (edge, 北) and 北京; 京: 北京 and 京大; 大: 京大 and 大学 (unknown); 学: 大学 and (学, edge)
    assert ids.tolist() == [[3, 1], [1, 2], [2, 0], [0, 4]]
    f = t.features("北京大学")
    assert f.shape == (4, 6) and f.dtype == np.float32
    assert f[2].tolist() == [*t.vectors[2], 0.0, 0.0, 0.0]  # an unknown bigram reads the zero row


def test_count_keeps_the_most_frequent_seen_twice_in_a_fixed_order():
    texts = ["北京大学", "北京", "上海"]
    t = BigramTable.count(texts, max_size=10)
    assert t.keys == [EDGE + "北", "北京"]  # equal counts: in the order first seen
    assert BigramTable.count(texts, max_size=1).keys == [EDGE + "北"]
    assert BigramTable.count(texts, max_size=10, min_count=1).keys == BigramTable.count(texts, 10, 1).keys


def test_save_and_load_round_trip_in_float16(tmp_path):
    t = table()
    t.save(tmp_path / "b.npz")
    back = BigramTable.load(tmp_path / "b.npz")
    assert back.keys == t.keys and np.allclose(back.vectors, t.vectors)
    keys_only = BigramTable(t.keys)
    keys_only.save(tmp_path / "k.npz")
    assert BigramTable.load(tmp_path / "k.npz").vectors is None
    with pytest.raises(ValueError, match="no vectors"):
        keys_only.features("北京")
    with pytest.raises(ValueError, match="one more expected"):
        BigramTable(t.keys, t.vectors[:3])


@given(st.text(min_size=0, max_size=40), st.text(min_size=1, max_size=5))
def test_features_are_one_row_per_code_point_and_local(text, tail):
    """Any text: one row per code point (so offsets line up), and a character's row depends on its neighbours
    only (what follows the next character never changes it)."""
    t = table()
    f = t.features(text)
    assert f.shape == (len(text), 6)
    g = t.features(text + tail)
    if len(text) > 1:
        assert np.array_equal(f[:-1], g[: len(text) - 1])
