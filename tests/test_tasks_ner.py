"""The bundled NER model through the same code path the API and CLI use."""

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLE, EXAMPLE_ENTITIES, spans
from zhie.tasks.ner import NerOptions, NerTagger


def test_ner_finds_the_example_entities(tagger):
    assert spans(tagger(EXAMPLE)) == EXAMPLE_ENTITIES


def test_ner_scores_are_probabilities(tagger):
    ents = tagger(EXAMPLE)
    assert ents and all(0.5 < e.score <= 1.0 for e in ents)


def test_ner_offsets_are_code_points_after_astral_characters(tagger):
    prefix = "😀👨‍👩‍👧\U00020000 "  # emoji, a ZWJ sequence, a CJK Extension B ideograph (outside the BMP)
    text = prefix + EXAMPLE
    got = spans(tagger(text))
    assert got == [(t, s, a + len(prefix), b + len(prefix)) for t, s, a, b in EXAMPLE_ENTITIES]
    assert all(text[a:b] == s for _, s, a, b in got)


def test_ner_full_width_input_keeps_original_text(tagger):
    text = "ＮＢＡ球星姚明在上海出生。"
    for e in tagger(text):
        assert text[e.start : e.end] == e.text
    assert ("PER", "姚明") in {(e.type, e.text) for e in tagger(text)}


def test_ner_empty_and_blank_texts(tagger):
    assert tagger.predict(["", "   ", "\n"]) == [[], [], []]


def test_ner_batch_matches_single(tagger):
    texts = [EXAMPLE, "李白出生于碎叶城。", "", "中国人民银行在北京发布了新规定。" * 3]
    batched = tagger.predict(texts)
    for t, got in zip(texts, batched):
        single = tagger.predict([t])[0]
        assert spans(got) == spans(single)
        assert [e.score for e in got] == pytest.approx([e.score for e in single], abs=0.1)  # dynamic INT8 scales activations per batch: scores drift, spans hold


def test_ner_long_text_entities_cross_window_seams_whole(tagger):
    # 37 copies: with 128-char windows and 32 overlap, many copies straddle a seam
    n = 37
    text = EXAMPLE * n
    small = NerTagger(tagger.bundle, tagger.session, NerOptions(window=128, overlap=32))
    got = spans(small(text))
    L = len(EXAMPLE)
    expected = [(t, s, a + i * L, b + i * L) for i in range(n) for t, s, a, b in EXAMPLE_ENTITIES]
    assert len(got) == len(set(got)), "duplicate entities at a seam"
    assert got == expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["张伟", "北京", "华为公司", "联合国", "任正非在深圳", "😀", "\u200b", "e\u0301", "\r\n", "Ｍate60", "\ud800", "。"]),
            st.text(max_size=12),
        ),
        max_size=12,
    ).map("".join)
)
def test_ner_offsets_exact_for_any_unicode(tagger, text):
    for e in tagger(text):
        assert 0 <= e.start < e.end <= len(text)
        assert text[e.start : e.end] == e.text
        assert e.type in ("PER", "LOC", "ORG")
        assert 0.0 < e.score <= 1.0


MEMORY_SCRIPT = r"""
import json, threading, time, psutil
from zhie.tasks.ner import NerTagger
proc = psutil.Process()
tagger = NerTagger.load("ner")
unit = "华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。"
text = (unit * (200_000 // len(unit) + 1))[:200_000]
tagger.predict([unit * 8])  # warm up the shapes a long text uses
idle = proc.memory_info().rss
peak = idle
done = False
def watch():
    global peak
    while not done:
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.005)
th = threading.Thread(target=watch); th.start()
t0 = time.perf_counter()
ents = tagger.predict([text])[0]
secs = time.perf_counter() - t0
done = True; th.join()
ok = all(text[e.start:e.end] == e.text for e in ents)
print(json.dumps({"idle_mb": idle / 2**20, "growth_mb": (peak - idle) / 2**20, "entities": len(ents),
                  "per": sum(e.text == "任正非" for e in ents), "exact": ok, "seconds": secs}))
"""


@pytest.mark.slow
def test_ner_200k_characters_in_bounded_memory():
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, check=True, timeout=900)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["exact"]
    copies = 200_000 // len(EXAMPLE)
    assert r["per"] >= copies * 0.98  # every full copy's 任正非, give or take seam-cut copies at the very end
    assert r["growth_mb"] < 100, r


def test_an_ensemble_of_one_model_with_itself_answers_as_the_model(tagger):
    """zhie.train.ensemble averages members' emissions and CRF scores under the serving decoder: a model
    averaged with itself must give the very same entities and scores, on short and windowed long text."""
    from zhie.train.ensemble import EnsembleTagger

    twice = EnsembleTagger([tagger, tagger], weights=[3.0, 1.0])
    long = "。".join([EXAMPLE] * 12)
    for got, ref in zip(twice.predict([EXAMPLE, long]), tagger.predict([EXAMPLE, long])):
        assert spans(got) == spans(ref) and len(ref) > 0
        assert all(abs(a.score - b.score) < 1e-4 for a, b in zip(got, ref))
