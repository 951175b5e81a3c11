"""fp16 GPU models: an INT8 graph dequantised back to float, converted to fp16, written beside the INT8
model. ONNX Runtime's CPU provider runs fp16 graphs too, so all of it is checked here without a GPU."""

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest

onnx = pytest.importorskip("onnx")

from zhie.models.bundle import load_bundle  # noqa: E402
from zhie.models.fp16 import FP16_NAME, dequantize, export_fp16, fp16_model_for, to_fp16  # noqa: E402
from zhie.runtime.session import OnnxSession, cpu_model  # noqa: E402
from zhie.tasks.sentiment import SentimentClassifier  # noqa: E402


def _run(model_or_path, ids):
    src = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else cpu_model(model_or_path)
    s = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return s.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(float32 model, INT8 file), quantised as zhie export does: embeddings read through a Dequantize
    (then DynamicQuantizeLinear → MatMulInteger, the BERT pattern) and straight into a MatMulInteger."""
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    emb, w, w2, b0 = (rng.normal(size=s).astype(np.float32) for s in ((60, 16), (16, 8), (16, 8), (16,)))
    g = helper.make_graph(
        [helper.make_node("Gather", ["emb", "input_ids"], ["x"], name="/embeddings/Gather"),
         helper.make_node("Add", ["x", "b0"], ["h"], name="/embeddings/Add"),
         helper.make_node("MatMul", ["h", "w"], ["y"], name="/head/MatMul"),
         helper.make_node("MatMul", ["x", "w2"], ["y2"], name="/skip/MatMul"),
         helper.make_node("Add", ["y", "y2"], ["logits"], name="/head/Add")],
        "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", 8])],
        [numpy_helper.from_array(a, k) for a, k in ((emb, "emb"), (w, "w"), (w2, "w2"), (b0, "b0"))])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    d = tmp_path_factory.mktemp("tiny")
    onnx.save(model, str(d / "float.onnx"))
    quantize_dynamic(str(d / "float.onnx"), str(d / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gather"])
    return model, d / "model.onnx"


IDS = np.array([[0, 5, 17, 33, 59, 2], [0, 7, 7, 1, 1, 1]], dtype=np.int64)


def test_dequantize_restores_float_matmul_and_embeddings(tiny):
    float_model, int8 = tiny
    q = onnx.load(str(int8))
    assert {"MatMulInteger", "DynamicQuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in q.graph.node}
    deq, matmuls, tables = dequantize(q)
    ops = {n.op_type for n in deq.graph.node}
    assert (matmuls, tables) == (2, 1) and ops == {"Gather", "MatMul", "Add"}
    onnx.checker.check_model(deq)
    ref, got = _run(float_model, IDS), _run(deq, IDS)
    # the weights are the INT8 ones (within half a step of the float ones); the activations are not quantised
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()
    assert np.abs(got - _run(int8, IDS)).max() < 0.1 * np.abs(ref).max()


def test_fp16_keeps_int64_in_float32_out(tiny):
    deq, _, _ = dequantize(onnx.load(str(tiny[1])))
    m16 = to_fp16(deq)
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in m16.graph.initializer)
    assert [i.type.tensor_type.elem_type for i in m16.graph.input] == [onnx.TensorProto.INT64] * 2
    out = _run(m16, IDS)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _run(deq, IDS), atol=0.02, rtol=0.01)


def _folder(src, dst, model=None):
    shutil.copytree(load_bundle(src).path, dst)
    if model is not None:
        shutil.copy(model, dst / "model.onnx")
    return dst


def test_export_fp16_writes_beside_the_int8_model_and_points_config_at_it(tiny, tmp_path):
    folder = _folder("sentiment", tmp_path / "m", tiny[1])
    out = export_fp16(folder)
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert out == folder / FP16_NAME and cfg["onnx_fp16"] == FP16_NAME
    assert cfg["fp16"]["from"] == "model.onnx" and cfg["fp16"]["dequantized"] == {"matmuls": 2, "embeddings": 1}
    assert cfg["onnx"] == "model.onnx"  # the CPU path is unchanged
    b = load_bundle(folder)
    assert fp16_model_for(b) == (out, None) and b.onnx_path.name == "model.onnx"
    # from a float32 graph of the same weights instead (a run's export/model.fused.onnx)
    export_fp16(folder, tiny[1].parent / "float.onnx")
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert "dequantized" not in cfg["fp16"] and cfg["fp16"]["from"].endswith("float.onnx")
    with pytest.raises(FileNotFoundError, match="--from"):
        export_fp16(folder, tmp_path / "nope.onnx")
    # an INT8 model replaced since: its old fp16 model is not used
    quant = onnx.load(str(folder / "model.onnx"))
    quant.doc_string = "re-exported"
    onnx.save(quant, str(folder / "model.onnx"))
    path, why = fp16_model_for(load_bundle(folder), None)
    assert path.name == "model.onnx" and why


def test_a_folder_without_one_gets_it_in_the_cache_once(tiny, tmp_path):
    folder = _folder("sentiment", tmp_path / "m", tiny[1])
    b = load_bundle(folder)
    path, why = fp16_model_for(b, tmp_path / "cache")
    assert why is None and path.parent.parent == tmp_path / "cache" / "fp16" and path.is_file()
    mtime = path.stat().st_mtime_ns
    assert fp16_model_for(b, tmp_path / "cache") == (path, None) and path.stat().st_mtime_ns == mtime
    assert not (folder / FP16_NAME).exists()
    path, why = fp16_model_for(b, None)
    assert path == b.onnx_path and "zhie export-fp16" in why


def test_bundled_sentiment_fp16_gives_the_int8_labels(tmp_path):
    """The real model, dequantised and in fp16, on ORT's CPU provider (a GPU runs the same graph)."""
    folder = _folder("sentiment", tmp_path / "s")
    export_fp16(folder)
    int8 = SentimentClassifier.load(str(folder), threads=2)
    fp16 = SentimentClassifier(int8.bundle, OnnxSession(folder / FP16_NAME, threads=2, cache=False))
    texts = ["这家酒店服务周到，房间干净，早餐丰富，下次还会再来！", "质量太差了，用了两天就坏了，客服也不理人，非常失望。",
             "明天上午九点在三楼会议室开会。", "还行吧，价格便宜，但是物流有点慢。", "电影剧情拖沓，演员演技尴尬。"]
    a, b = int8.predict(texts), fp16.predict(texts)
    assert [r.label for r in a] == [r.label for r in b]
    assert max(abs(r.confidence - s.confidence) for r, s in zip(a, b)) < 0.1


def test_cli_export_fp16(tiny, tmp_path, capsys):
    from zhie import cli

    folder = _folder("sentiment", tmp_path / "m", tiny[1])
    assert cli.main(["export-fp16", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["fp16"] == str(folder / FP16_NAME)
    assert cli.main(["export-fp16", str(tmp_path / "none")]) == 2
    assert "no model at" in capsys.readouterr().err
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    assert cli.main(["export-fp16", str(folder), "--from", str(tmp_path / "junk.onnx")]) == 2
    err = capsys.readouterr().err
    assert "junk.onnx: cannot make an fp16 model" in err and "Traceback" not in err


def test_int8_emulation_gives_the_int8_model_s_outputs(tiny):
    from zhie.models.fp16 import emulate_int8

    q = onnx.load(str(tiny[1]))
    emu, n = emulate_int8(q)
    ops = {m.op_type for m in emu.graph.node}
    assert n == 2 and not ops & {"MatMulInteger", "DynamicQuantizeLinear"} and {"Round", "Clip", "ReduceMin"} <= ops
    onnx.checker.check_model(emu)
    rng = np.random.default_rng(1)
    for ids in (IDS, rng.integers(0, 60, (3, 9)).astype(np.int64)):
        np.testing.assert_allclose(_run(emu, ids), _run(tiny[1], ids), rtol=1e-6, atol=1e-6)


def test_bundled_ner_int8_emulation_is_exact(tmp_path):
    """The real model: the emulating float32 graph gives the INT8 model's emissions."""
    from zhie.models.fp16 import INT8X_NAME

    folder = _folder("ner", tmp_path / "n")
    out = export_fp16(folder, kind="int8")
    assert out.name == INT8X_NAME and json.loads((folder / "config.json").read_text(encoding="utf-8"))["onnx_int8x"] == INT8X_NAME
    assert fp16_model_for(load_bundle(folder), None, kind="int8") == (out, None)
    rng = np.random.default_rng(2)
    ids = np.concatenate([np.zeros((4, 1)), rng.integers(100, 7000, (4, 50)), np.full((4, 1), 2)], 1).astype(np.int64)
    np.testing.assert_allclose(_run(out, ids), _run(folder / "model.onnx", ids), rtol=1e-5, atol=1e-4)
