"""fp16 models for the GPU, written beside a folder's INT8 model as ``model.fp16.onnx``.

    zhie export-fp16 FOLDER [--from FLOAT.onnx]

The INT8 model stays the CPU path. On CUDA, ONNX Runtime runs INT8 dynamic quantisation
(``DynamicQuantizeLinear`` → ``MatMulInteger``) partly on the CPU, so the GPU gets an fp16 graph of the
same weights: from a training run's float32 graph where there is one (``--from runs/X/export/model.fused.onnx``,
``zhie export --fp16`` does this), else from the INT8 graph itself, dequantised (each ``MatMulInteger``
with its scales becomes a float ``MatMul`` over ``(W - zero_point) * scale``, each quantised embedding
table a float one; the weights are then exactly what the INT8 model multiplies by, and the difference
from the CPU model is the activations left unquantised plus fp16 rounding). Inputs and outputs stay
int64 / float32, so the tasks feed both models alike.

``config.json`` gets ``"onnx_fp16": "model.fp16.onnx"`` and where it came from. A folder that has none
(the bundled models ship INT8 only, to keep the package small) has one made in the model cache on the
first ``--device cuda`` start, where ``onnx`` is installed (the gpu extra has it). Needs ``onnx``.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np

from .bundle import file_sha256

log = logging.getLogger("zhie.models")

FP16_NAME = "model.fp16.onnx"
INT8X_NAME = "model.int8x.onnx"  # the INT8 arithmetic in float32 ops (emulate_int8): the CPU model's answers on a GPU
KINDS = {"fp16": ("onnx_fp16", FP16_NAME, "fp16"), "int8": ("onnx_int8x", INT8X_NAME, "int8x")}  # config key, file, info key
# ops kept in float32 besides ORT's defaults (the converter misses Casts around a kept node whose input
# types shape inference cannot tell, e.g. after contrib ops: keeping the BiLSTM in float32 broke the graph)
KEEP_FLOAT_OPS: list[str] = []


def dequantize(model):
    """The float32 graph of an INT8 dynamically quantised one (``quantize_dynamic``'s patterns), in place.
    Returns (model, MatMuls restored, embedding tables restored)."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    arr = lambda name: numpy_helper.to_array(inits[name])  # noqa: E731
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    new_inits: dict[str, np.ndarray] = {}
    replace: dict[int, list] = {}  # id(node) -> the nodes put in its place
    drop: set[int] = set()
    float_of: dict[str, str] = {}  # quantised tensor -> the float tensor it stands for
    matmuls = gathers = 0

    def deq(q_name: str, scale: str, zp: str | None) -> np.ndarray:
        z = arr(zp).astype(np.float32) if zp else np.float32(0)
        return ((arr(q_name).astype(np.float32) - z) * arr(scale).astype(np.float32)).astype(np.float32)

    for n in g.node:  # quantised embedding tables: a float Gather (in place of the Dequantize after it, if any)
        if n.op_type == "Gather" and n.input[0] in inits and n.input[0].endswith("_quantized"):
            base = n.input[0].removesuffix("_quantized")
            if base + "_scale" not in inits:
                continue
            new_inits[base] = deq(n.input[0], base + "_scale", base + "_zero_point" if base + "_zero_point" in inits else None)
            after = consumers.get(n.output[0], [])
            dqls = [c for c in after if c.op_type == "DequantizeLinear"]
            out = dqls[0].output[0] if dqls else n.output[0] + "_float"
            for c in dqls:
                if c.output[0] != out:
                    raise ValueError(f"{n.name}: two dequantisations of one table; cannot dequantise")
                drop.add(id(c))
            replace[id(n)] = [helper.make_node("Gather", [base, n.input[1]], [out], name=n.name,
                                               **{a.name: helper.get_attribute_value(a) for a in n.attribute})]
            float_of[n.output[0]] = out
            gathers += 1
        elif n.op_type == "DynamicQuantizeLinear":
            float_of[n.output[0]] = n.input[0]
    for n in g.node:
        if n.op_type == "MatMulInteger" and n.input[1] in inits:
            cast = (consumers.get(n.output[0]) or [None])[0]
            mul = (consumers.get(cast.output[0]) or [None])[0] if cast is not None else None
            if n.input[0] not in float_of or cast is None or cast.op_type != "Cast" or mul is None \
                    or mul.op_type != "Mul" or len(consumers[n.output[0]]) != 1:
                raise ValueError(f"{n.name}: not the MatMulInteger pattern of quantize_dynamic; cannot dequantise")
            base = n.input[1].removesuffix("_quantized")
            zp = n.input[3] if len(n.input) > 3 and n.input[3] else None
            new_inits[base + "_dequantized"] = deq(n.input[1], base + "_scale", zp)
            replace[id(mul)] = [helper.make_node("MatMul", [float_of[n.input[0]], base + "_dequantized"], [mul.output[0]],
                                                 name=n.name.removesuffix("_quant"))]
            drop.update((id(n), id(cast)))
            matmuls += 1
    nodes = [m for n in g.node if id(n) not in drop for m in replace.get(id(n), [n])]
    # what only the quantised path read (DynamicQuantizeLinear, scale products) is dead now
    outputs = {o.name for o in g.output}
    while True:
        used = {i for n in nodes for i in n.input} | outputs
        keep = [n for n in nodes if any(o in used for o in n.output)]
        if len(keep) == len(nodes):
            break
        nodes = keep
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    kept = [t for t in g.initializer if t.name in used and t.name not in new_inits]
    del g.initializer[:]
    g.initializer.extend(kept)
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in new_inits.items() if k in used)
    names = {t.name for t in g.initializer} | {i.name for i in g.input} | {o for n in nodes for o in n.output}
    vi = [v for v in g.value_info if v.name in names]
    del g.value_info[:]
    g.value_info.extend(vi)
    return model, matmuls, gathers


def to_fp16(model):
    """fp16 weights and activations, int64 / float32 inputs and outputs kept (Casts at the edges)."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = convert_float_to_float16(model, keep_io_types=True, op_block_list=DEFAULT_OP_BLOCK_LIST + KEEP_FLOAT_OPS)
    # a kept-float node reading one tensor twice (the LSTM's initial_h and initial_c) gets the same Cast
    # twice from the converter: one copy of each node is kept
    seen: set[tuple] = set()
    nodes = []
    for n in model.graph.node:
        key = (n.name, n.op_type, tuple(n.input), tuple(n.output))
        if n.name and key in seen:
            continue
        seen.add(key)
        nodes.append(n)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def write_fp16(source: Path, out: Path) -> dict:
    """fp16 graph of ``source`` (float32, or INT8 which is dequantised first) to ``out``; returns what was done."""
    import onnx

    model = onnx.load(str(source))
    ops = {n.op_type for n in model.graph.node}
    info: dict = {"from": source.name}
    if "MatMulInteger" in ops or "DequantizeLinear" in ops:
        model, m, e = dequantize(model)
        info["dequantized"] = {"matmuls": m, "embeddings": e}
    model = to_fp16(model)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, out)
    return info


def write_int8x(source: Path, out: Path) -> dict:
    """:func:`emulate_int8` of the INT8 graph ``source`` to ``out``; returns what was done."""
    import onnx

    model = onnx.load(str(source))
    if "DynamicQuantizeLinear" not in {n.op_type for n in model.graph.node}:
        raise ValueError(f"{source} is not a dynamically quantised INT8 graph: nothing to emulate")
    model, n = emulate_int8(model)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, out)
    return {"from": source.name, "emulated_matmuls": n}


def _write(kind: str, source: Path, out: Path) -> dict:
    return write_fp16(source, out) if kind == "fp16" else write_int8x(source, out)


def export_fp16(folder: str | Path, source: str | Path | None = None, kind: str = "fp16") -> Path:
    """Write ``model.fp16.onnx`` into a model folder (from ``source``, a float32 graph of the same weights,
    else from the folder's INT8 model) and point its ``config.json`` at it. Returns the fp16 file.
    ``kind="int8"``: ``model.int8x.onnx`` instead, the INT8 model's arithmetic in float32 (:func:`emulate_int8`)."""
    from .bundle import load_bundle

    key, name, info_key = KINDS[kind]
    bundle = load_bundle(folder)
    src = Path(source) if source else bundle.onnx_path
    if not src.is_file():
        raise FileNotFoundError(f"--from {src}: no such ONNX file")
    out = bundle.path / name
    info = _write(kind, src, out)
    info["int8_sha256"] = file_sha256(bundle.onnx_path)
    if source:
        info["from"] = str(Path(source).resolve())
    cfg_path = bundle.path / "config.json"
    config = json.loads(cfg_path.read_text(encoding="utf-8"))
    config[key] = name
    config[info_key] = info
    cfg_path.write_text(json.dumps(config, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("wrote %s (%.1f MB) from %s", out, out.stat().st_size / 1e6, src)
    return out


def fp16_model_for(bundle, cache_dir: Path | None = None, kind: str = "fp16") -> tuple[Path, str | None]:
    """(the model to run on the GPU, None or why it is the INT8 one). The folder's fp16 model if its config
    names one; else one made from the INT8 model in ``cache_dir``/fp16 (once per model, needs ``onnx``).
    ``kind="int8"``: the INT8-emulating float32 model (``model.int8x.onnx``, cache ``cache_dir``/int8x)."""
    key, fname, info_key = KINDS[kind]
    name = bundle.config.get(key)
    if name and (bundle.path / name).is_file():
        made_from = bundle.config.get(info_key, {}).get("int8_sha256")
        if not made_from or made_from == file_sha256(bundle.onnx_path):
            return bundle.path / name, None
        log.warning("%s: %s was made for another model.onnx (the INT8 model changed since); not used", bundle.path, name)
    if cache_dir is None:
        return bundle.onnx_path, f"no {fname} in {bundle.path} (zhie export-fp16 {bundle.path}) and no model cache to make one in"
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        return bundle.onnx_path, (f"no {fname} in {bundle.path} and the onnx package does not import to make one ({e}; "
                                  f"pip install onnx, or zhie export-fp16 {bundle.path} where it is)")
    final = cache_dir / info_key / file_sha256(bundle.onnx_path)[:24] / fname
    if final.is_file():
        return final, None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        log.info("%s: writing its %s GPU model to %s (once per model)", bundle.name, kind, final)
        _write(kind, bundle.onnx_path, final)
        return final, None
    except Exception as e:  # noqa: BLE001 - read-only cache, an unexpected graph
        return bundle.onnx_path, f"could not make an {kind} GPU model of {bundle.onnx_path} ({type(e).__name__}: {e})"


def emulate_int8(model):
    """The INT8 graph's arithmetic in float32 ops that every provider has, in place: each
    ``DynamicQuantizeLinear`` becomes its formula (ReduceMin/Max, Round, Clip: ONNX's definition), each
    ``MatMulInteger`` a float ``MatMul`` of the zero-point-centred integers (exact in float32: the values are
    at most 255 and 127, TF32 holds them too), embedding tables dequantised. On CUDA, where ONNX Runtime has
    no ``DynamicQuantizeLinear`` kernel, this gives the CPU model's answers instead of the float model's.
    Returns (model, MatMuls rewritten)."""
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    arr = lambda name: numpy_helper.to_array(inits[name])  # noqa: E731
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    new_inits: dict[str, np.ndarray] = {"zhie_q_zero": np.array(0, np.float32), "zhie_q_255": np.array(255, np.float32),
                                        "zhie_q_tiny": np.array(1e-30, np.float32)}
    replace: dict[int, list] = {}
    drop: set[int] = set()
    centred: dict[str, str] = {}  # quantised activation -> its float (q - zero point)
    matmuls = 0
    for n in g.node:
        if n.op_type != "DynamicQuantizeLinear":
            continue
        x, (q, s, zp) = n.input[0], n.output
        p = f"{q}/emulated"
        mk = helper.make_node
        nodes = [
            mk("ReduceMin", [x], [p + "/min"], keepdims=0), mk("Min", [p + "/min", "zhie_q_zero"], [p + "/min0"]),
            mk("ReduceMax", [x], [p + "/max"], keepdims=0), mk("Max", [p + "/max", "zhie_q_zero"], [p + "/max0"]),
            mk("Sub", [p + "/max0", p + "/min0"], [p + "/range"]), mk("Div", [p + "/range", "zhie_q_255"], [s]),
            mk("Max", [s, "zhie_q_tiny"], [p + "/s"]),
            mk("Neg", [p + "/min0"], [p + "/nmin"]), mk("Div", [p + "/nmin", p + "/s"], [p + "/zp_raw"]),
            mk("Round", [p + "/zp_raw"], [p + "/zp_r"]), mk("Clip", [p + "/zp_r", "zhie_q_zero", "zhie_q_255"], [p + "/zp"]),
            mk("Div", [x, p + "/s"], [p + "/xs"]), mk("Round", [p + "/xs"], [p + "/xr"]),
            mk("Add", [p + "/xr", p + "/zp"], [p + "/xz"]), mk("Clip", [p + "/xz", "zhie_q_zero", "zhie_q_255"], [p + "/q"]),
            mk("Sub", [p + "/q", p + "/zp"], [p + "/c"]),
        ]
        for k, m in enumerate(nodes):
            m.name = f"{p}/{k}"
        if zp in consumers and any(c.op_type != "MatMulInteger" for c in consumers[zp]):
            raise ValueError(f"{n.name}: its zero point feeds more than MatMulInteger; cannot emulate")
        replace[id(n)] = nodes
        centred[q] = p + "/c"
    for n in g.node:
        if n.op_type == "MatMulInteger" and n.input[1] in inits:
            cast = (consumers.get(n.output[0]) or [None])[0]
            if cast is None or cast.op_type != "Cast" or len(consumers[n.output[0]]) != 1:
                raise ValueError(f"{n.name}: not the MatMulInteger pattern of quantize_dynamic; cannot emulate")
            a = n.input[0]
            pre = []
            if a not in centred:  # an already-quantised tensor (a quantised embedding read straight in)
                zp_a = n.input[2] if len(n.input) > 2 and n.input[2] else None
                c = a + "/centred"
                pre = [helper.make_node("Cast", [a], [a + "/f"], to=TensorProto.FLOAT, name=a + "/cast_f")]
                if zp_a:
                    pre += [helper.make_node("Cast", [zp_a], [zp_a + "/f"], to=TensorProto.FLOAT, name=zp_a + "/cast_f"),
                            helper.make_node("Sub", [a + "/f", zp_a + "/f"], [c], name=c)]
                else:
                    c = a + "/f"
                centred[a] = c
            base = n.input[1].removesuffix("_quantized")
            zp = arr(n.input[3]).astype(np.float32) if len(n.input) > 3 and n.input[3] else np.float32(0)
            new_inits[base + "_centred"] = (arr(n.input[1]).astype(np.float32) - zp).astype(np.float32)
            replace[id(cast)] = pre + [helper.make_node("MatMul", [centred[a], base + "_centred"], [cast.output[0]],
                                                        name=n.name.removesuffix("_quant"))]
            drop.add(id(n))
            matmuls += 1
    # DequantizeLinear (the embedding tables) stays: it has float kernels on every provider
    nodes = [m for n in g.node if id(n) not in drop for m in replace.get(id(n), [n])]
    outputs = {o.name for o in g.output}
    while True:
        used = {i for m in nodes for i in m.input} | outputs
        keep = [m for m in nodes if any(o in used for o in m.output)]
        if len(keep) == len(nodes):
            break
        nodes = keep
    uniq = nodes
    del g.node[:]
    g.node.extend(uniq)
    used = {i for m in uniq for i in m.input}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in new_inits.items() if k in used)
    produced = {o for m in uniq for o in m.output}
    vi = [v for v in g.value_info if v.name in produced and not v.name.endswith("_quantized")]
    del g.value_info[:]
    g.value_info.extend(vi)
    return model, matmuls
