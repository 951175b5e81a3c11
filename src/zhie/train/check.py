"""INT8 vs float32 check of an exported model on dev data, both scored by the serving code path."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..tasks.ner import NerTagger
from ..tasks.scoring import calibration_error, score_entities, score_labels
from ..tasks.sentiment import SentimentClassifier
from .data import read_ner, split_dev
from .sentiment_data import read_sentiment


def eval_tagger(tagger: NerTagger, docs, batch: int = 64, types=None, progress=None, seen: set[str] | None = None) -> dict:
    """Score ``tagger`` on gold ``docs`` (only ``types`` when given); ``progress(done, total)`` after each batch.
    With ``seen`` (surface forms of a training file's gold mentions), also ``seen`` and ``unseen``: the
    figures of the mentions whose text is, or is not, one of them (:func:`score_seen_unseen`)."""
    t0 = time.perf_counter()
    preds = []
    for i in range(0, len(docs), batch):
        preds.extend(tagger.predict([d.text for d in docs[i : i + batch]]))
        if progress:
            progress(min(i + batch, len(docs)), len(docs))
    s = score_entities([d.entities for d in docs], preds, types)
    if seen is not None:
        s.update(score_seen_unseen([d.entities for d in docs], preds, seen, types))
    s.update(seconds=round(time.perf_counter() - t0, 2), sentences=len(docs))
    return s


def mention_forms(docs, types=None) -> set[str]:
    """The surface forms of the gold mentions of ``docs`` (of ``types`` only, when given)."""
    keep = set(types) if types is not None else None
    return {e.text for d in docs for e in d.entities if keep is None or e.type in keep}


def score_seen_unseen(gold, pred, seen: set[str], types=None) -> dict:
    """P/R/F1 apart for mentions whose surface form is in ``seen`` (a training file's gold mentions) and
    for the others: recall over the gold mentions of each side, precision over the predictions of
    each side (a prediction is on the side of its own text), a hit being an exact (type, start, end)
    match. ``seen_share``: the fraction of gold mentions that are seen."""
    from ..tasks.scoring import prf

    keep = set(types) if types is not None else None
    c = {True: [0, 0, 0], False: [0, 0, 0]}  # hits, predictions, gold
    for g_ents, p_ents in zip(gold, pred):
        g = {e.key(): e.text for e in g_ents if keep is None or e.type in keep}
        p = {e.key(): e.text for e in p_ents if keep is None or e.type in keep}
        for k, t in g.items():
            c[t in seen][2] += 1
            c[t in seen][0] += k in p
        for t in p.values():
            c[t in seen][1] += 1
    n_gold = c[True][2] + c[False][2]
    return {"seen": prf(*c[True]), "unseen": prf(*c[False]),
            "seen_share": round(c[True][2] / n_gold, 4) if n_gold else 0.0}


def eval_classifier(clf: SentimentClassifier, pairs, batch: int = 64, results: list | None = None) -> dict:
    """Accuracy, macro F1, per label and ECE of ``clf`` on (text, label) pairs; ``results``, when given,
    receives the answers."""
    t0 = time.perf_counter()
    results = [] if results is None else results
    for i in range(0, len(pairs), batch):
        results.extend(clf.predict([t for t, _ in pairs[i : i + batch]]))
    gold = [g for _, g in pairs]
    s = score_labels(gold, [r.label for r in results], clf.labels)
    # of the confidence: how far "0.9" is from being right 90 % of the time (10 bins)
    s["ece"] = calibration_error([r.confidence for r in results], [r.label == g for r, g in zip(results, gold)])
    s.update(seconds=round(time.perf_counter() - t0, 2), examples=len(pairs))
    return s


def check_export(int8_dir: Path, float_dir: Path, data: str, fmt: str, dev_split: str = "contiguous") -> dict:
    """NER: the dev split carved from a training file (``dev_split``: contiguous blocks, or the old random
    split the bundled chain was trained with); sentiment: a dev file as it is; extract: an eval file of
    {"text", "schema", "expected"} lines."""
    task = json.loads((Path(int8_dir) / "config.json").read_text(encoding="utf-8"))["task"]
    report: dict = {"data": str(data)}
    if task == "ner":
        dev = split_dev(read_ner(data, fmt), mode=dev_split)[1]
        report["split"] = f"dev (5%, seed 13, {dev_split})"
        for name, d in (("float32", float_dir), ("int8", int8_dir)):
            report[name] = eval_tagger(NerTagger.load(d), dev)
        report["int8_loss"] = round(report["float32"]["f1"] - report["int8"]["f1"], 4)
    elif task == "extract":
        from ..tasks.extract import SchemaExtractor

        lines = read_extract_eval(data)
        held = set(json.loads((Path(int8_dir) / "config.json").read_text(encoding="utf-8")).get("held_out_types", []))
        for name, d in (("float32", float_dir), ("int8", int8_dir)):
            report[name] = eval_extractor(SchemaExtractor.load(d), lines, held or None)
        report["int8_loss"] = round(report["float32"]["f1"] - report["int8"]["f1"], 4)
    else:
        dev = read_sentiment(data, fmt)
        answers: dict[str, list] = {"float32": [], "int8": []}
        for name, d in (("float32", float_dir), ("int8", int8_dir)):
            report[name] = eval_classifier(SentimentClassifier.load(d), dev, results=answers[name])
        report["int8_loss"] = round(report["float32"]["accuracy"] - report["int8"]["accuracy"], 4)
        # how far the served probabilities sit from float32's, text by text (the largest label gap of each)
        gap = np.array([max(abs(a.scores[k] - b.scores[k]) for k in a.scores) for a, b in zip(answers["float32"], answers["int8"])])
        report["int8_probability_gap"] = {"mean": round(float(gap.mean()), 4), "p95": round(float(np.quantile(gap, 0.95)), 4),
                                          "max": round(float(gap.max()), 4),
                                          "label_changes": sum(a.label != b.label for a, b in zip(answers["float32"], answers["int8"]))}
    cfg_path = Path(int8_dir) / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    # the config keeps the summary; an extractor's per_type (hundreds of paths) stays in the printed report
    drop = {"seconds", "per_type"} if task == "extract" else {"seconds"}
    cfg["dev_eval"] = {k: ({kk: vv for kk, vv in v.items() if kk not in drop} if isinstance(v, dict) else v) for k, v in report.items()}
    cfg_path.write_text(json.dumps(cfg, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def read_extract_eval(path: str | Path) -> list[dict]:
    """``zhie eval extract`` lines: {"text", "schema", "expected"} (+ optional "source"); errors name the line."""
    from ..tasks.schema import parse_schema, result_from_json

    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise ValueError('each line needs "text", "schema" and "expected"')
            groups = obj.get("groups") or {}
            if not isinstance(groups, dict):
                raise ValueError('"groups" must be an object {type name: group}')
            out.append({"text": obj["text"], "schema": parse_schema(obj["schema"], max_depth=8, max_nodes=1024),
                        "expected": result_from_json(obj.get("expected", {})), "source": obj.get("source", ""),
                        "groups": groups})
        except (ValueError, KeyError) as e:
            raise ValueError(f"{path}:{n}: {e}") from None
    return out


def eval_extractor(extractor, lines: list[dict], held_out: set[str] | None = None, progress=None) -> dict:
    """Micro P/R/F1 over (path of types, start, end) tuples, overall, per source, per path of types
    ("属性词/观点词" for a nested node), per group of type names (``zhie.train.uie_data.name_group``: the
    line's own "groups" first, then :data:`~zhie.train.uie_data.NAME_GROUPS`) and on held-out type
    names (tuples whose path ends in one)."""
    from ..tasks.schema import result_tuples
    from ..tasks.scoring import prf
    from .uie_data import name_group

    t0 = time.perf_counter()
    counts: dict[str, list[int]] = {}

    def add(key: str, gold: set, pred: set) -> None:
        c = counts.setdefault(key, [0, 0, 0])
        c[0] += len(gold & pred)
        c[1] += len(pred)
        c[2] += len(gold)

    for i, x in enumerate(lines):
        pred = result_tuples(extractor.predict([x["text"]], x["schema"])[0])
        gold = result_tuples(x["expected"])
        add("all", gold, pred)
        if x["source"]:
            add("source:" + x["source"], gold, pred)
        for path in {t[0] for t in gold | pred}:
            add("type:" + "/".join(path), {g for g in gold if g[0] == path}, {p for p in pred if p[0] == path})
        group = {path: name_group(path, x.get("groups")) for path in {t[0] for t in gold | pred}}
        for g_name in set(group.values()):
            add("group:" + g_name, {g for g in gold if group[g[0]] == g_name}, {p for p in pred if group[p[0]] == g_name})
        if held_out:
            add("held_out", {g for g in gold if g[0][-1] in held_out}, {p for p in pred if p[0][-1] in held_out})
        if progress:
            progress(i + 1, len(lines))

    def by(prefix: str) -> dict:
        return {k[len(prefix):]: prf(*v) for k, v in sorted(counts.items()) if k.startswith(prefix)}

    out = prf(*counts.pop("all", [0, 0, 0]))
    out["per_source"] = by("source:")
    out["per_type"] = by("type:")
    out["per_group"] = by("group:")
    if "held_out" in counts:
        out["held_out"] = prf(*counts["held_out"])
    out.update(examples=len(lines), seconds=round(time.perf_counter() - t0, 2))
    return out
