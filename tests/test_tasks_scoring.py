"""Tests for zhie.tasks.scoring.score_entities: exact-span micro P/R/F1 with per-type figures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhie.tasks.scoring import score_entities
from zhie.text.types import Entity


def E(typ: str, start: int, end: int, text: str = "", score: float = 1.0) -> Entity:
    return Entity(typ, text or "x" * (end - start), start, end, score)


def prf(out: dict) -> tuple[float, float, float]:
    return out["precision"], out["recall"], out["f1"]


def test_scoring_perfect_prediction():
    gold = [[E("PER", 0, 2), E("LOC", 5, 7)], [E("ORG", 1, 4)]]
    out = score_entities(gold, gold)
    assert prf(out) == (1.0, 1.0, 1.0)
    assert out["support"] == 3
    assert set(out["per_type"]) == {"PER", "LOC", "ORG"}
    assert all(prf(v) == (1.0, 1.0, 1.0) and v["support"] == 1 for v in out["per_type"].values())


def test_scoring_partial_match_micro_average():
    gold = [[E("PER", 0, 2), E("LOC", 5, 7)], [E("ORG", 1, 4), E("PER", 6, 8)]]
    pred = [[E("PER", 0, 2), E("LOC", 5, 8)], [E("ORG", 1, 4)]]
    out = score_entities(gold, pred)
    # tp = 2 (PER 0-2, ORG 1-4), 3 predicted, 4 gold
    assert out["precision"] == round(2 / 3, 4)
    assert out["recall"] == 0.5
    assert out["f1"] == round(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5), 4)
    assert out["support"] == 4
    assert prf(out["per_type"]["PER"]) == (1.0, 0.5, round(2 / 3, 4))
    assert prf(out["per_type"]["LOC"]) == (0.0, 0.0, 0.0)
    assert prf(out["per_type"]["ORG"]) == (1.0, 1.0, 1.0)
    assert out["per_type"]["PER"]["support"] == 2


def test_scoring_boundary_mismatch_is_wrong():
    out = score_entities([[E("PER", 0, 3)]], [[E("PER", 0, 2)]])
    assert prf(out) == (0.0, 0.0, 0.0)


def test_scoring_type_mismatch_counts_as_false_positive_and_false_negative():
    out = score_entities([[E("PER", 0, 2), E("LOC", 4, 6)]], [[E("ORG", 0, 2), E("LOC", 4, 6)]])
    # 1 tp of 2 predicted, 2 gold: the ORG is a FP and the PER a FN
    assert prf(out) == (0.5, 0.5, 0.5)
    assert prf(out["per_type"]["ORG"]) == (0.0, 0.0, 0.0) and out["per_type"]["ORG"]["support"] == 0
    assert prf(out["per_type"]["PER"]) == (0.0, 0.0, 0.0) and out["per_type"]["PER"]["support"] == 1
    assert prf(out["per_type"]["LOC"]) == (1.0, 1.0, 1.0)


def test_scoring_matches_on_type_and_offsets_only():
    # entity text and score play no part: offsets index the document
    out = score_entities([[E("PER", 0, 2, "张三", 1.0)]], [[E("PER", 0, 2, "张三", 0.3)]])
    assert prf(out) == (1.0, 1.0, 1.0)


def test_scoring_duplicates_count_once():
    out = score_entities([[E("PER", 0, 2)]], [[E("PER", 0, 2), E("PER", 0, 2, score=0.5)]])
    assert prf(out) == (1.0, 1.0, 1.0)


def test_scoring_documents_are_scored_separately():
    # the same span in another document is not a match
    out = score_entities([[E("PER", 0, 2)], []], [[], [E("PER", 0, 2)]])
    assert prf(out) == (0.0, 0.0, 0.0)
    assert out["support"] == 1


def test_scoring_types_filter_drops_other_types_from_both_sides():
    gold = [[E("PER", 0, 2), E("LOC", 4, 6), E("ORG", 8, 9)]]
    pred = [[E("PER", 0, 2), E("LOC", 4, 7), E("GPE", 10, 12)]]
    out = score_entities(gold, pred, types=["PER"])
    assert prf(out) == (1.0, 1.0, 1.0)
    assert out["support"] == 1
    assert set(out["per_type"]) == {"PER"}
    out = score_entities(gold, pred, types=("PER", "LOC"))
    assert prf(out) == (0.5, 0.5, 0.5)
    assert set(out["per_type"]) == {"PER", "LOC"}
    # a requested type that never occurs is still listed, with zeros
    out = score_entities(gold, pred, types=iter(["PER", "MISC"]))
    assert out["per_type"]["MISC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert prf(out) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "gold, pred, types",
    [
        ([], [], None),
        ([[]], [[]], None),
        ([[], []], [[], []], ["PER"]),
        ([[E("PER", 0, 1)]], [[]], None),
        ([[]], [[E("PER", 0, 1)]], None),
        ([[E("PER", 0, 1)]], [[E("PER", 0, 1)]], []),
    ],
)
def test_scoring_empty_inputs_give_zero(gold, pred, types):
    out = score_entities(gold, pred, types=types)
    assert prf(out) == (0.0, 0.0, 0.0)
    if types is None:
        assert out["support"] == sum(len(g) for g in gold)
    for v in out["per_type"].values():
        assert v["f1"] == 0.0


def test_scoring_empty_types_filter_scores_nothing():
    out = score_entities([[E("PER", 0, 1)]], [[E("PER", 0, 1)]], types=[])
    assert out["support"] == 0 and out["per_type"] == {}


def test_scoring_length_mismatch_raises():
    with pytest.raises(ValueError):
        score_entities([[]], [[], []])


def test_scoring_accepts_generators_per_document():
    gold = [iter([E("PER", 0, 2)])]
    pred = [(e for e in [E("PER", 0, 2)])]
    assert prf(score_entities(gold, pred)) == (1.0, 1.0, 1.0)


ent = st.builds(lambda t, s, n: E(t, s, s + n), st.sampled_from(["PER", "LOC", "ORG"]), st.integers(0, 6), st.integers(1, 4))
docs = st.lists(st.lists(ent, max_size=5), max_size=5)


@settings(max_examples=150, deadline=None)
@given(docs, st.data())
def test_scoring_micro_totals_agree_with_per_type(gold, data):
    pred = data.draw(st.lists(st.lists(ent, max_size=5), min_size=len(gold), max_size=len(gold)))
    out = score_entities(gold, pred)
    n_gold = sum(len({e.key() for e in g}) for g in gold)
    n_pred = sum(len({e.key() for e in p}) for p in pred)
    tp = sum(len({e.key() for e in g} & {e.key() for e in p}) for g, p in zip(gold, pred))
    assert out["support"] == n_gold == sum(v["support"] for v in out["per_type"].values())
    assert out["precision"] == (round(tp / n_pred, 4) if n_pred else 0.0)
    assert out["recall"] == (round(tp / n_gold, 4) if n_gold else 0.0)
    assert 0.0 <= out["f1"] <= 1.0
    assert min(out["precision"], out["recall"]) - 1e-4 <= out["f1"] <= max(out["precision"], out["recall"]) + 1e-4
    # scoring a prediction against itself is perfect whenever there is anything to score
    if n_gold:
        assert prf(score_entities(gold, gold)) == (1.0, 1.0, 1.0)
    # swapping gold and prediction swaps precision and recall
    rev = score_entities(pred, gold)
    assert (rev["precision"], rev["recall"], rev["f1"]) == (out["recall"], out["precision"], out["f1"])
