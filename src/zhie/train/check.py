"""INT8 vs float32 check of an exported model on dev data, both scored by the serving code path."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..tasks.ner import NerTagger
from ..tasks.scoring import score_entities, score_labels
from ..tasks.sentiment import SentimentClassifier
from .data import read_ner, split_dev
from .sentiment_data import read_sentiment


def eval_tagger(tagger: NerTagger, docs, batch: int = 64, types=None, progress=None) -> dict:
    """Score ``tagger`` on gold ``docs`` (only ``types`` when given); ``progress(done, total)`` after each batch."""
    t0 = time.perf_counter()
    preds = []
    for i in range(0, len(docs), batch):
        preds.extend(tagger.predict([d.text for d in docs[i : i + batch]]))
        if progress:
            progress(min(i + batch, len(docs)), len(docs))
    s = score_entities([d.entities for d in docs], preds, types)
    s.update(seconds=round(time.perf_counter() - t0, 2), sentences=len(docs))
    return s


def eval_classifier(clf: SentimentClassifier, pairs, batch: int = 64) -> dict:
    t0 = time.perf_counter()
    preds = []
    for i in range(0, len(pairs), batch):
        preds.extend(r.label for r in clf.predict([t for t, _ in pairs[i : i + batch]]))
    s = score_labels([g for _, g in pairs], preds, clf.labels)
    s.update(seconds=round(time.perf_counter() - t0, 2), examples=len(pairs))
    return s


def check_export(int8_dir: Path, float_dir: Path, data: str, fmt: str) -> dict:
    """NER: the dev split carved from a training file; sentiment: a dev file as it is."""
    task = json.loads((Path(int8_dir) / "config.json").read_text(encoding="utf-8"))["task"]
    report: dict = {"data": str(data)}
    if task == "ner":
        dev = split_dev(read_ner(data, fmt))[1]
        report["split"] = "dev (5%, seed 13)"
        for name, d in (("float32", float_dir), ("int8", int8_dir)):
            report[name] = eval_tagger(NerTagger.load(d), dev)
        report["int8_loss"] = round(report["float32"]["f1"] - report["int8"]["f1"], 4)
    else:
        dev = read_sentiment(data, fmt)
        for name, d in (("float32", float_dir), ("int8", int8_dir)):
            report[name] = eval_classifier(SentimentClassifier.load(d), dev)
        report["int8_loss"] = round(report["float32"]["accuracy"] - report["int8"]["accuracy"], 4)
    cfg_path = Path(int8_dir) / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["dev_eval"] = {k: ({kk: vv for kk, vv in v.items() if kk != "seconds"} if isinstance(v, dict) else v) for k, v in report.items()}
    cfg_path.write_text(json.dumps(cfg, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return report
