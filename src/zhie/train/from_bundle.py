"""Turn a served model folder back into a training run: ``model.onnx`` (INT8 or float32) → ``model.pt``.

Training runs live in ``runs/``, which git does not keep, so on a fresh machine the only copy of a
bundled model is its exported folder. This reads the weights back out of the ONNX graph that
``zhie export`` wrote, so the next run can start from what ships (``--init
src/zhie/models/bundled/ner``) instead of re-running every recipe before it.

How the graph maps back to torch names (``zhie.models.export`` decides them):
- biases and LayerNorm parameters keep their torch names as float32 initializers;
- each ``MatMul`` node is named after its module (``/bert/encoder/layer.3/intermediate/dense/MatMul``,
  ``/head/Gemm_MatMul_quant``): its weight input is the transposed ``Linear`` weight, INT8 with a
  per-channel scale and zero point when quantised (dequantised here, so the weights are within half
  a quantisation step of the trained ones);
- quantised ``Gather`` tables (embeddings) are ``<torch name>_quantized`` with a per-tensor scale;
- the BiLSTM's ``LSTM`` nodes (``/lstm/fwd/LSTM``) hold W, R and B in ONNX gate order (i, o, f, c),
  reordered to torch's (i, f, g, o);
- an export with activation smoothing (``zhie export --smooth``, extract v7) divides a MatMul's input by
  per-channel scales (a ``Mul`` node named ``.../smooth`` before it, possibly through the
  ``DynamicQuantizeLinear`` of its INT8 form) and multiplies the weight's rows by the same scales: the rows
  are divided back here, so the torch weight is the unsmoothed one;
- the CRF of an NER model is in ``config.json``; a sentiment model's temperature too.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

log = logging.getLogger("zhie.train")

_SUFFIX = re.compile(r"/(Gemm_)?MatMul(_\d+)?(_quant)?$")  # _1: a module called twice (the split extractor)


def _dequant(inits: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    """The float32 value of initializer ``name``, dequantising ``name`` that ends in _quantized."""
    if name in inits and not name.endswith("_quantized"):
        return inits[name].astype(np.float32)
    if not name.endswith("_quantized") or name not in inits:
        return None
    base = name[: -len("_quantized")]
    q = inits[name].astype(np.float32)
    scale, zp = inits[base + "_scale"].astype(np.float32), inits[base + "_zero_point"].astype(np.float32)
    return (q - zp) * scale  # per-tensor (scalars) or per output channel (last axis)


def _lstm_gates(a: np.ndarray, size: int) -> np.ndarray:
    """ONNX gate blocks (i, o, f, c) along axis 0 → torch's (i, f, g, o)."""
    i, o, f, c = (a[k * size : (k + 1) * size] for k in range(4))
    return np.concatenate([i, f, c, o], axis=0)


def _module(scope: str) -> str:
    """Torch module path of an ONNX node scope: ``/bert/encoder/layer.3/intermediate/dense`` as the
    whole model's export names it; ``/layer.3/intermediate/dense_1`` where the split extractor calls its
    layers itself (``_1``: the second call of the same module)."""
    parts = [re.sub(r"_\d+$", "", p) for p in scope.strip("/").split("/")]
    if parts and parts[0].startswith("layer."):
        parts = ["bert", "encoder", *parts]
    return ".".join(parts)


def onnx_state(onnx_path: str | Path) -> dict[str, np.ndarray]:
    """Torch state-dict entries (float32 numpy) recovered from an exported graph."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state: dict[str, np.ndarray] = {}
    producer = {out: node for node in graph.node for out in node.output}

    def smoothing(x: str) -> np.ndarray | None:
        """The per-input-channel factor (1 / scale) a smoothed export multiplied ``x`` by, if it did."""
        p = producer.get(x)
        if p is not None and p.op_type == "DynamicQuantizeLinear":
            p = producer.get(p.input[0])
        if p is not None and p.op_type == "Mul" and p.name.endswith("/smooth") and p.input[1] in inits:
            return inits[p.input[1]].astype(np.float32)
        return None

    for name, arr in inits.items():
        if arr.dtype == np.float32 and not name.startswith(("onnx::", "/")) and not name.endswith(("_scale", "_zero_point")):
            state[name] = arr
    for node in graph.node:
        if node.op_type in ("MatMul", "MatMulInteger") and _SUFFIX.search(node.name):
            w = _dequant(inits, node.input[1])
            if w is None:  # a product of two activations (attention scores)
                continue
            inv = smoothing(node.input[0])
            if inv is not None:  # (x * inv) @ (diag(1 / inv) W) == x @ W: undo the rows' scaling
                w = w * inv[:, None]
            state[_module(_SUFFIX.sub("", node.name)) + ".weight"] = np.ascontiguousarray(w.T)
        elif node.op_type == "Gather" and node.input[0].endswith("_quantized"):
            state[node.input[0][: -len("_quantized")]] = _dequant(inits, node.input[0])
        elif node.op_type == "LSTM":
            size = next(a.i for a in node.attribute if a.name == "hidden_size")
            module = node.name.strip("/").rsplit("/", 1)[0].replace("/", ".")  # lstm.fwd
            W, R, B = (inits[x][0].astype(np.float32) for x in node.input[1:4])
            state[f"{module}.weight_ih_l0"] = _lstm_gates(W, size)
            state[f"{module}.weight_hh_l0"] = _lstm_gates(R, size)
            state[f"{module}.bias_ih_l0"] = _lstm_gates(B[: 4 * size], size)
            state[f"{module}.bias_hh_l0"] = _lstm_gates(B[4 * size :], size)
    return state


def load_bundle_model(bundle_dir: str | Path):
    """(torch model, vocab, kind, extra) rebuilt from a model folder; ``extra`` holds what a run keeps
    beside its weights (the sentiment temperature, the NER lexicon)."""
    import torch
    from transformers import BertModel

    from ..text.vocab import CharVocab
    from .encoder import bert_config
    from .modeling import task_model

    bundle_dir = Path(bundle_dir)
    cfg = json.loads((bundle_dir / "config.json").read_text(encoding="utf-8"))
    kind, enc = cfg["task"], cfg["encoder"]
    vocab = CharVocab.load(bundle_dir / cfg.get("vocab", "vocab.txt"))
    state = onnx_state(bundle_dir / cfg.get("onnx", "model.onnx"))
    hidden = int(enc["hidden"])
    bert = BertModel(bert_config(
        len(vocab), hidden, int(enc["layers"]),
        # e5-small's shape where a folder does not record it (exported before 2026-11-29)
        int(enc.get("heads", hidden // 32)),
        int(enc.get("ffn", state["bert.encoder.layer.0.intermediate.dense.weight"].shape[0])),
        float(enc.get("layer_norm_eps", 1e-12)), int(cfg.get("max_positions", 512))), add_pooling_layer=False)
    if kind not in ("ner", "sentiment", "extract"):
        raise ValueError(f"{bundle_dir}: unknown task {kind!r}")
    head: dict = {}  # the constructor arguments a run saves as head_config, from where the folder keeps them
    table = None  # a bigram model's table: the graph's lex input was looked up in it, it becomes the embedding
    if kind == "ner":
        head = dict(cfg.get("head", {}))
        if "bigrams" in cfg:
            from ..text.bigrams import BigramTable

            table = BigramTable.load(bundle_dir / cfg["bigrams"]["file"])
            head["bigrams"] = len(table.keys) + 1
    elif kind == "extract" and cfg.get("split"):
        head = {"split": int(cfg["split"])}
    model = task_model(kind, bert, list(cfg.get("labels") or ["start", "end"]), head)
    extra: dict = {}
    if kind == "ner":
        crf = cfg["crf"]
        state.update({"crf.transitions": np.asarray(crf["transitions"], np.float32),
                      "crf.start": np.asarray(crf["start"], np.float32), "crf.end": np.asarray(crf["end"], np.float32)})
        if "lexicon" in cfg:
            extra["lexicon"] = {"file": cfg["lexicon"]["file"], "categories": cfg["lexicon"]["categories"]}
        if table is not None:
            state["bigram.weight"] = table.vectors
            extra["bigrams"] = {"file": cfg["bigrams"]["file"], "rows": head["bigrams"]}
    elif kind == "sentiment":
        extra["temperature"] = float(cfg.get("temperature", 1.0))
    elif kind == "extract" and "held_out_types" in cfg:  # the names these weights were never trained on
        extra["held_out"] = list(cfg["held_out_types"])
    wanted = {k for k in model.state_dict() if not k.endswith("position_ids")}
    missing, unexpected = sorted(wanted - state.keys()), sorted(k for k in state.keys() - wanted)
    if missing:
        raise ValueError(f"{bundle_dir}: the graph lacks {missing[:5]} ({len(missing)} weights)")
    if unexpected:
        log.warning("ignoring %d tensors the model has no place for: %s", len(unexpected), unexpected[:5])
    sd = model.state_dict()
    for k in wanted:
        if tuple(sd[k].shape) != state[k].shape:
            raise ValueError(f"{bundle_dir}: {k} has shape {state[k].shape}, the model expects {tuple(sd[k].shape)}")
    model.load_state_dict({k: torch.from_numpy(np.array(state[k], dtype=np.float32)) for k in wanted}, strict=False)
    model.eval()
    return model, vocab, kind, extra


def import_bundle(bundle_dir: str | Path, out: str | Path) -> Path:
    """Write ``out`` as a training run (model.pt, vocab.txt, ...) holding the weights of a model folder."""
    import shutil

    from .loop import save_checkpoint

    bundle_dir, out = Path(bundle_dir), Path(out)
    model, vocab, kind, extra = load_bundle_model(bundle_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab.save(out / "vocab.txt")
    keep = {"kind": kind, "head_config": model.head_config(), "imported_from": str(bundle_dir)}
    for shipped in ("lexicon", "bigrams"):
        if shipped in extra:
            shutil.copy(bundle_dir / extra[shipped]["file"], out / extra[shipped]["file"])
            keep[shipped] = extra[shipped]
    if "held_out" in extra:
        keep["held_out"] = extra["held_out"]
    if kind == "sentiment":
        (out / "calibration.json").write_text(json.dumps({"temperature": extra["temperature"]}) + "\n")
    save_checkpoint(model, out / "model.pt", 0, **keep)
    log.info("imported %s model %s into %s", kind, bundle_dir, out)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="zhie train import-bundle",
                                description="Write a model folder (bundled or exported) back out as a training run, "
                                            "so that `--init RUN` can continue from it.")
    p.add_argument("bundle", help="model folder: config.json, model.onnx, vocab.txt")
    p.add_argument("--out", required=True, help="run folder to write")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from ..models.bundle import ModelNotFound, resolve

    try:
        import_bundle(resolve(args.bundle), args.out)
    except (ModelNotFound, ValueError) as e:
        raise SystemExit(f"zhie train import-bundle: {e}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
