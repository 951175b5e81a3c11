"""ONNX export of a torch tagger, transformer graph fusion and INT8 weight quantisation.

Training-time only (imports torch and onnx); the serving path reads the files this writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def export_onnx(model, path: Path, output_name: str = "emissions", opset: int = 17, lex_dim: int = 0) -> None:
    """``lex_dim``: the model takes a third input, ``lex`` (batch, seq, lex_dim) float32 lexicon features."""
    import torch

    ids = torch.tensor([[0, 100, 200, 300, 2], [0, 100, 200, 2, 1]], dtype=torch.long)
    mask = (ids != 1).long()
    args, names = (ids, mask), ["input_ids", "attention_mask"]
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    if lex_dim:
        args, names = (ids, mask, torch.zeros(2, 5, lex_dim)), names + ["lex"]
        axes["lex"] = {0: "batch", 1: "seq"}
    torch.onnx.export(
        model,
        args,
        str(path),
        input_names=names,
        output_names=[output_name],
        dynamic_axes={**axes, output_name: {0: "batch"} if output_name == "logits" else {0: "batch", 1: "seq"}},
        opset_version=opset,
        dynamo=False,
    )


def export_split_extractor_onnx(model, path: Path, opset: int = 17) -> None:
    """The split-encoder extractor (``train.modeling.SplitSpanExtractor``): P prompts and W text windows in,
    pointers (M, T, 2) out for the M (prompt, text) pairs that ``pair_prompt`` / ``pair_text`` name."""
    import torch

    prompts = torch.tensor([[0, 100, 2, 1], [0, 101, 102, 2]], dtype=torch.long)
    texts = torch.tensor([[0, 200, 201, 202, 2], [0, 300, 301, 2, 1], [0, 400, 2, 1, 1]], dtype=torch.long)
    args = (prompts, (prompts != 1).long(), texts, (texts != 1).long(), torch.tensor([0, 1, 1]), torch.tensor([0, 0, 2]))
    names = ["prompt_ids", "prompt_mask", "text_ids", "text_mask", "pair_prompt", "pair_text"]
    axes = {"prompt_ids": {0: "prompts", 1: "prompt_len"}, "prompt_mask": {0: "prompts", 1: "prompt_len"},
            "text_ids": {0: "texts", 1: "text_len"}, "text_mask": {0: "texts", 1: "text_len"},
            "pair_prompt": {0: "pairs"}, "pair_text": {0: "pairs"}, "pointers": {0: "pairs", 1: "text_len"}}
    torch.onnx.export(model, args, str(path), input_names=names, output_names=["pointers"], dynamic_axes=axes,
                      opset_version=opset, dynamo=False)


def fuse(float_path: Path, num_heads: int, hidden: int) -> Path:
    """Fuse LayerNorm/GELU (and attention where the pattern allows) for BERT; returns the fused file."""
    from onnxruntime.transformers.optimizer import optimize_model

    fused = float_path.with_name(float_path.stem + ".fused.onnx")
    opt = optimize_model(str(float_path), model_type="bert", num_heads=num_heads, hidden_size=hidden, opt_level=1)
    opt.save_model_to_file(str(fused))
    return fused


def matmuls_matching(model_path: Path, pattern: str | None) -> list[str]:
    """Names of the MatMul nodes whose name matches the regular expression ``pattern`` (none for None)."""
    import re

    import onnx

    if not pattern:
        return []
    rx = re.compile(pattern)
    graph = onnx.load(str(model_path), load_external_data=False).graph
    matmuls = [n for n in graph.node if n.op_type == "MatMul"]
    # a module called twice (the split extractor's lower layers read prompts and texts) gives two nodes over
    # one weight: both stay in float32, or the quantiser would replace the weight under the kept node too
    weights = {n.input[1] for n in matmuls if rx.search(n.name)}
    return [n.name for n in matmuls if n.input[1] in weights]


def quantize(fused: Path, out_path: Path, reduce_range: bool = False, float_nodes: list[str] | None = None) -> None:
    """Dynamic INT8 (per-channel weights) of every MatMul/Gather weight except the nodes named in ``float_nodes``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fused),
        str(out_path),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=reduce_range,
        op_types_to_quantize=["MatMul", "Attention", "Gather"],
        nodes_to_exclude=list(float_nodes or []),
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def smooth(fused: Path, out_path: Path, feeds: list[dict], alpha: float = 0.75, threads: int = 2) -> int:
    """SmoothQuant's activation smoothing for dynamic INT8: each weight MatMul's input channel j is divided
    by s_j and the matching weight row multiplied by it, so the float32 product is unchanged while the
    activation outliers that per-tensor dynamic quantisation scales to (a few channels after GELU run 30x
    their median) shrink. s_j = max|x_j|^alpha / max|w_j|^(1 - alpha), from ``feeds`` (the model's inputs
    as served); MatMuls that read the same tensor (query, key, value) share one scale and one ``Mul`` node.
    Writes the smoothed float32 graph to ``out_path`` and returns how many inputs were smoothed."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = onnx.load(str(fused))
    for k, n in enumerate(model.graph.node):  # the Mul nodes go in by name: every node needs a unique one
        n.name = n.name or f"node_{k}"
    inits = {t.name: t for t in model.graph.initializer}
    groups: dict[str, list] = {}
    for n in model.graph.node:
        if n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2:
            groups.setdefault(n.input[0], []).append(n)
    if not groups or not feeds:
        raise ValueError("smoothing needs weight MatMuls and at least one calibration input")
    names = list(groups)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)  # the graph as read, with every activation that gets smoothed as an output
    probe.graph.output.extend(helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, None) for x in names)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
    first = len(model.graph.output)
    amax: dict[str, np.ndarray] = {}
    for feed in feeds:
        for x, a in zip(names, sess.run(None, feed)[first:]):
            m = np.abs(a.reshape(-1, a.shape[-1])).max(0)
            amax[x] = np.maximum(amax[x], m) if x in amax else m
    order = [n.name for n in model.graph.node]
    for x, nodes in groups.items():
        weights = [numpy_helper.to_array(inits[n.input[1]]) for n in nodes]
        wmax = np.max([np.abs(w).max(1) for w in weights], axis=0)
        scale = np.clip(np.maximum(amax[x], 1e-5) ** alpha / np.maximum(wmax, 1e-5) ** (1 - alpha), 1e-2, 1e2)
        scale = scale.astype(np.float32)
        inv = numpy_helper.from_array((1.0 / scale).astype(np.float32), f"{x}/smooth_scale")
        model.graph.initializer.append(inv)
        y = f"{x}/smoothed"
        for n, w in zip(nodes, weights):
            inits[n.input[1]].CopyFrom(numpy_helper.from_array((w * scale[:, None]).astype(np.float32), n.input[1]))
            n.input[0] = y
        at = min(order.index(n.name) for n in nodes)
        model.graph.node.insert(at, helper.make_node("Mul", [x, inv.name], [y], name=f"{nodes[0].name}/smooth"))
        order.insert(at, f"{nodes[0].name}/smooth")
    onnx.save(model, str(out_path))
    return len(groups)


def optimize_and_quantize(float_path: Path, out_path: Path, num_heads: int, hidden: int, reduce_range: bool = False,
                          keep_float: str | None = None, smooth_alpha: float | None = None,
                          calibration: list[dict] | None = None) -> tuple[Path, list[str], int]:
    """Fuse attention/LayerNorm/GELU for BERT, then dynamic INT8 quantisation of the weights.

    ``keep_float`` is a regular expression over MatMul node names left in float32: the few matrix products
    whose inputs carry outlier activations (``python -m zhie.train.quant_sensitivity`` finds them), where
    per-tensor dynamic quantisation of the input costs most accuracy. Returns (fused file, kept nodes).

    ``reduce_range`` keeps weights in a 7-bit range (on x86 CPUs without VNNI the u8 x s8 kernels add
    pairs of products in int16, which can saturate). Measured on NER v2 it moved MSRA dev F1 from
    0.9086 to 0.9118 but CLUENER from 0.689 to 0.671 (float 0.916 / 0.689): no net gain, so it is off
    by default (MODELS.md).

    ``smooth_alpha`` smooths activations first (:func:`smooth`), calibrated on ``calibration`` (feed dicts);
    the smoothed graph is what gets quantised, ``fused`` stays the plain one. Returns (fused file, kept
    nodes, number of smoothed inputs)."""
    fused = fuse(float_path, num_heads, hidden)
    kept = matmuls_matching(fused, keep_float)
    if keep_float and not kept:
        raise ValueError(f"--keep-float {keep_float!r} matches no MatMul node of the model")
    src, smoothed = fused, 0
    if smooth_alpha:
        src = fused.with_name(fused.stem + ".smoothed.onnx")
        smoothed = smooth(fused, src, calibration or [], smooth_alpha)
    quantize(src, out_path, reduce_range=reduce_range, float_nodes=kept)
    if src != fused:
        src.unlink()
    return fused, kept, smoothed
