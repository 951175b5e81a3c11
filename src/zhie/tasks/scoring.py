"""Entity-level scoring: exact (type, start, end) match, micro-averaged, with per-type figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from ..text.types import Entity


def prf(tp: int, n_pred: int, n_gold: int) -> dict:
    """Precision, recall, F1 (rounded to 4 places) and support from counts."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": n_gold}


def score_entities(
    gold: Sequence[Iterable[Entity]], pred: Sequence[Iterable[Entity]], types: Iterable[str] | None = None
) -> dict:
    """Micro P/R/F1 over exact spans. With ``types``, only those types count, in gold and prediction alike."""
    if len(gold) != len(pred):
        raise ValueError("gold and prediction lists differ in length")
    keep = set(types) if types is not None else None
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for g_ents, p_ents in zip(gold, pred):
        g = {e.key() for e in g_ents if keep is None or e.type in keep}
        p = {e.key() for e in p_ents if keep is None or e.type in keep}
        for k in g:
            n_gold[k[0]] += 1
        for k in p:
            n_pred[k[0]] += 1
        for k in g & p:
            tp[k[0]] += 1
    all_types = sorted(set(n_gold) | set(n_pred) | (keep or set()))
    out = prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    out["per_type"] = {t: prf(tp[t], n_pred[t], n_gold[t]) for t in all_types}
    return out


def score_labels(gold: Sequence[str], pred: Sequence[str], labels: Iterable[str] | None = None) -> dict:
    """Accuracy, per-label P/R/F1 for ``labels`` (default: every label seen in gold or prediction), and
    macro F1 over those of them that occur in gold or prediction: a model's label that the data never
    has and the model never says (neutral on a two-class review set) is listed but not averaged in."""
    if len(gold) != len(pred):
        raise ValueError("gold and prediction lists differ in length")
    labs = sorted(set(labels) if labels is not None else set(gold) | set(pred))
    n_gold, n_pred = Counter(gold), Counter(pred)
    tp = Counter(g for g, p in zip(gold, pred) if g == p)
    per = {lab: prf(tp[lab], n_pred[lab], n_gold[lab]) for lab in labs}
    acc = sum(tp.values()) / len(gold) if gold else 0.0
    seen = [lab for lab in labs if n_gold[lab] or n_pred[lab]]
    macro = sum(per[lab]["f1"] for lab in seen) / len(seen) if seen else 0.0
    return {"accuracy": round(acc, 4), "macro_f1": round(macro, 4), "per_label": per}


def calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: over equal-width bins of confidence, the example-weighted mean
    gap between the mean confidence and the accuracy in the bin (0 = a confidence of 0.9 is right
    90 % of the time)."""
    if len(confidence) != len(correct):
        raise ValueError("confidence and correctness lists differ in length")
    if not len(confidence):
        return 0.0
    gap: dict[int, float] = {}  # per bin: sum of confidences minus number right
    for c, ok in zip(confidence, correct):
        b = min(int(float(c) * bins), bins - 1)
        gap[b] = gap.get(b, 0.0) + float(c) - (1.0 if ok else 0.0)
    return round(sum(abs(g) for g in gap.values()) / len(confidence), 4)
