"""INT8 products give exact integers on every x86 CPU: without VNNI, ONNX Runtime's u8 x s8 kernels add
pairs of products in int16 and saturate; zhie.runtime.int8 makes such a CPU's weights unsigned."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from zhie.runtime.int8 import s8_weights_saturate, unsign_weights  # noqa: E402
from zhie.runtime.session import OnnxSession, cpu_model  # noqa: E402

K, N = 64, 12


def _matmul_integer(path, b, zp=None):
    """y = (a - a_zp) @ (b - b_zp) in int32, b a constant int8 matrix: the node quantize_dynamic writes."""
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(3, np.uint8), "a_zp")]
    inputs = ["a", "b", "a_zp"]
    if zp is not None:
        inits.append(numpy_helper.from_array(zp, "b_zp"))
        inputs.append("b_zp")
    g = helper.make_graph([helper.make_node("MatMulInteger", inputs, ["y"], name="mm")], "mm",
                          [helper.make_tensor_value_info("a", TensorProto.UINT8, ["m", K])],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, ["m", N])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


def _exact(a, b, zp=None):
    return (a.astype(np.int64) - 3) @ (b.astype(np.int64) - (0 if zp is None else zp.astype(np.int64)))


@pytest.mark.parametrize("weights", ["auto", "u8"])
def test_products_that_overflow_int16_pairs_come_out_exact(tmp_path, monkeypatch, weights):
    """255 x 127 twice is 64,770, past int16: a saturating kernel answers 32,767 for that pair."""
    monkeypatch.setenv("ZHIE_INT8_WEIGHTS", weights)
    monkeypatch.setenv("ZHIE_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    b = np.full((K, N), 127, np.int8)
    b[:, N // 2:] = rng.integers(-128, 128, (K, N - N // 2), dtype=np.int8)
    zp = rng.integers(-5, 6, N).astype(np.int8)
    a = np.full((4, K), 255, np.uint8)
    a[2:] = rng.integers(0, 256, (2, K), dtype=np.uint8)
    for path, z in ((_matmul_integer(tmp_path / "a.onnx", b), None), (_matmul_integer(tmp_path / "z.onnx", b, zp), zp)):
        for cache in (False, True):
            got = OnnxSession(path, threads=1, cache=cache).run(a=a)[0]
            np.testing.assert_array_equal(got, _exact(a, b, z), err_msg=f"{path.name} cache={cache}")


def test_weights_kept_beside_the_model_file_are_read_and_made_unsigned(tmp_path, monkeypatch):
    """A model whose weights sit in an external data file (as large imported models do)."""
    monkeypatch.setenv("ZHIE_INT8_WEIGHTS", "u8")
    rng = np.random.default_rng(4)
    b = np.full((K, N), 127, np.int8)
    m = onnx.load(str(_matmul_integer(tmp_path / "inline.onnx", b)))
    (tmp_path / "ext").mkdir()
    onnx.save(m, str(tmp_path / "ext" / "model.onnx"), save_as_external_data=True, location="model.onnx.data",
              size_threshold=0)
    assert (tmp_path / "ext" / "model.onnx.data").stat().st_size >= K * N
    a = rng.integers(200, 256, (3, K), dtype=np.uint8)
    got = OnnxSession(tmp_path / "ext" / "model.onnx", threads=1, cache=False).run(a=a)[0]
    np.testing.assert_array_equal(got, _exact(a, b))


def test_unsigned_weights_are_the_same_product(tmp_path):
    rng = np.random.default_rng(1)
    b = rng.integers(-128, 128, (K, N), dtype=np.int8)
    zp = rng.integers(-3, 4, N).astype(np.int8)
    m = onnx.load(str(_matmul_integer(tmp_path / "m.onnx", b, zp)))
    assert unsign_weights(m) == 1
    onnx.checker.check_model(m)
    assert {t.name: t.data_type for t in m.graph.initializer} == {
        "b_u8": TensorProto.UINT8, "b_zp_u8": TensorProto.UINT8, "a_zp": TensorProto.UINT8}
    assert unsign_weights(m) == 0  # nothing signed is left


def test_the_cpu_decides_and_the_environment_overrides(monkeypatch):
    monkeypatch.delenv("ZHIE_INT8_WEIGHTS", raising=False)
    avx2 = {"sse4_2", "avx2", "fma"}
    assert s8_weights_saturate("x86_64", avx2)  # e.g. AMD Zen 2/3, Intel Haswell to Broadwell
    assert s8_weights_saturate("x86_64", avx2 | {"avx512f", "avx512bw"})  # Skylake-SP: AVX-512 without VNNI
    assert not s8_weights_saturate("x86_64", avx2 | {"avx512f", "avx512_vnni"})
    assert not s8_weights_saturate("x86_64", avx2 | {"avx_vnni"})
    assert not s8_weights_saturate("x86_64", {"sse4_2"})  # SSE kernels widen to int16 before adding
    assert not s8_weights_saturate("aarch64", set())
    monkeypatch.setenv("ZHIE_INT8_WEIGHTS", "u8")
    assert s8_weights_saturate("x86_64", avx2 | {"avx512_vnni"})
    monkeypatch.setenv("ZHIE_INT8_WEIGHTS", "s8")
    assert not s8_weights_saturate("x86_64", avx2)
    monkeypatch.setenv("ZHIE_INT8_WEIGHTS", "int4")
    with pytest.raises(ValueError, match="ZHIE_INT8_WEIGHTS"):
        s8_weights_saturate("x86_64", avx2)


def test_bundled_ner_answers_the_same_with_unsigned_weights(monkeypatch):
    """The shipped model with every one of its weight matrices made unsigned gives the very same emissions
    as the model this CPU serves by default."""
    from zhie.models.bundle import BUNDLED_DIR

    path = BUNDLED_DIR / "ner" / "model.onnx"
    rng = np.random.default_rng(2)
    ids = np.concatenate([np.zeros((3, 1)), rng.integers(100, 7000, (3, 60)), np.full((3, 1), 2)], 1).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    default = OnnxSession(path, threads=1, cache=False).run(**feeds)[0]
    monkeypatch.setenv("ZHIE_INT8_WEIGHTS", "u8")
    m = onnx.load(str(path))
    assert unsign_weights(m) == sum(n.op_type == "MatMulInteger" for n in m.graph.node) > 60
    assert isinstance(cpu_model(path), bytes)
    np.testing.assert_array_equal(OnnxSession(path, threads=1, cache=False).run(**feeds)[0], default)


def test_an_already_fused_product_is_made_unsigned_too(tmp_path, monkeypatch):
    """A model someone optimised with ONNX Runtime already (DynamicQuantizeMatMul, com.microsoft) gets the
    same treatment: products past int16 still come out right."""
    monkeypatch.setenv("ZHIE_INT8_WEIGHTS", "u8")
    rng = np.random.default_rng(3)
    b = np.full((K, N), 127, np.int8)
    b[:, N // 2:] = rng.integers(-128, 128, (K, N - N // 2), dtype=np.int8)
    scale = np.full(N, 0.01, np.float32)
    g = helper.make_graph(
        [helper.make_node("DynamicQuantizeMatMul", ["a", "b", "b_scale"], ["y"], name="dqmm", domain="com.microsoft")],
        "dqmm", [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["m", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", N])],
        [numpy_helper.from_array(b, "b"), numpy_helper.from_array(scale, "b_scale")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=9)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    assert unsign_weights(m) == 1 and m.graph.node[0].input[3] == "dqmm_0_zp_u8"
    onnx.save(model, str(tmp_path / "f.onnx"))
    a = rng.uniform(0.9, 1.0, (3, K)).astype(np.float32)  # every activation quantises near 255
    got = OnnxSession(tmp_path / "f.onnx", threads=1, cache=False).run(a=a)[0]
    np.testing.assert_allclose(got, a @ (b.astype(np.float32) * scale), rtol=0.01)
