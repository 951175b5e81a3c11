"""INT8 vs float check of an exported model on a dev split: both scored by the serving code path."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..tasks.ner import NerTagger
from ..tasks.scoring import score_entities
from .data import read_ner, split_dev


def eval_tagger(tagger: NerTagger, docs, batch: int = 64) -> dict:
    t0 = time.perf_counter()
    preds = []
    for i in range(0, len(docs), batch):
        preds.extend(tagger.predict([d.text for d in docs[i : i + batch]]))
    s = score_entities([d.entities for d in docs], preds)
    s["seconds"] = round(time.perf_counter() - t0, 2)
    s["sentences"] = len(docs)
    return s


def check_export(int8_dir: Path, float_dir: Path, data: str, fmt: str = "bio") -> dict:
    dev = split_dev(read_ner(data, fmt))[1]
    report = {"data": str(data), "split": "dev (5%, seed 13)"}
    for name, d in (("float32", float_dir), ("int8", int8_dir)):
        report[name] = eval_tagger(NerTagger.load(d), dev)
    report["int8_f1_loss"] = round(report["float32"]["f1"] - report["int8"]["f1"], 4)
    cfg_path = Path(int8_dir) / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["dev_eval"] = {k: (v if not isinstance(v, dict) else {kk: vv for kk, vv in v.items() if kk != "seconds"}) for k, v in report.items()}
    cfg_path.write_text(json.dumps(cfg, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return report
