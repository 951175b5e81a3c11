"""INT8 weights that give the same answers on every x86 CPU.

``quantize_dynamic`` writes signed (s8) weights, which ONNX Runtime multiplies with u8 activations. On
x86-64 CPUs without VNNI (AVX2, or AVX-512 without VNNI) MLAS does that with ``vpmaddubsw``, which adds
pairs of u8 x s8 products in int16 and saturates: an activation near 255 against a weight near 127
overflows, and the model answers differently (ORT's quantization guide; OpenVINO calls it the
saturation issue). Its u8 x u8 kernels widen to int16 first and add with ``vpmaddwd``, which cannot
overflow. So on such a CPU each signed weight matrix is shifted by 128 into u8, with its zero point
shifted alike: (a - za)(w - 0) == (a - za)((w + 128) - 128), the very same integers, exact.

With VNNI (``vpdpbusd`` adds in int32) the shipped s8 weights are kept: that is the faster kernel there.
``ZHIE_INT8_WEIGHTS`` = ``u8`` / ``s8`` forces either (``auto``, the default, decides by the CPU).
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache

import numpy as np

_VNNI = ("avx512_vnni", "avx_vnni")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            line = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return frozenset()
    return frozenset(line.partition(":")[2].split())


def s8_weights_saturate(machine: str | None = None, flags: frozenset[str] | set[str] | None = None) -> bool:
    """Whether ONNX Runtime on this machine (or the one described) adds u8 x s8 products in saturating
    int16. A machine whose flags cannot be read is taken at its word: no rewrite."""
    choice = os.environ.get("ZHIE_INT8_WEIGHTS", "auto").strip().lower()
    if choice in ("u8", "unsigned"):
        return True
    if choice in ("s8", "signed"):
        return False
    if choice not in ("", "auto"):
        raise ValueError(f"ZHIE_INT8_WEIGHTS={choice!r}: expected auto, u8 or s8")
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return False  # ARM's kernels (sdot/udot, or widening NEON) do not saturate so
    flags = cpu_flags() if flags is None else flags
    return "avx2" in flags and not any(f in flags for f in _VNNI)


# the ops whose constant B is multiplied by MLAS's u8 x s8 kernels: op -> (B's input, B zero point's input)
_WEIGHT_INPUTS = {
    ("", "MatMulInteger"): (1, 3),
    ("com.microsoft", "DynamicQuantizeMatMul"): (1, 3),
    ("com.microsoft", "MatMulIntegerToFloat"): (1, 5),
    ("com.microsoft", "QAttention"): (1, 7),
}


def has_int8_products(data: bytes) -> bool:
    """A cheap look into a model file's bytes: does it hold any node that multiplies INT8 weights (s8 or not)."""
    return any(op.encode() in data for _, op in _WEIGHT_INPUTS)


def unsign_weights(model) -> int:
    """Rewrite, in place, every integer matrix product of ``model`` (an ``onnx.ModelProto``: MatMulInteger, and
    ONNX Runtime's fused DynamicQuantizeMatMul, MatMulIntegerToFloat and QAttention) whose B is a constant int8
    matrix to the same product with uint8 B (B + 128, zero point + 128). Returns how many."""
    from onnx import TensorProto, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    made: dict[str, str] = {}
    count = 0
    for n in g.node:
        at = _WEIGHT_INPUTS.get(("" if n.domain == "ai.onnx" else n.domain, n.op_type))
        if at is None or len(n.input) <= at[0]:
            continue
        bi, zi = at
        b = inits.get(n.input[bi])
        if b is None or b.data_type != TensorProto.INT8:
            continue
        zp_name = n.input[zi] if len(n.input) > zi and n.input[zi] else ""
        zp = inits.get(zp_name) if zp_name else None
        if zp_name and (zp is None or zp.data_type != TensorProto.INT8):
            continue  # a zero point computed at run time: leave the node as it is
        for name, tensor in ((n.input[bi], b), (zp_name, zp)):
            if tensor is None or name in made:
                continue
            shifted = (numpy_helper.to_array(tensor).astype(np.int16) + 128).astype(np.uint8)
            new = numpy_helper.from_array(shifted, name + "_u8")
            g.initializer.append(new)
            made[name] = new.name
        inputs = list(n.input) + [""] * max(0, zi + 1 - len(n.input))
        inputs[bi] = made[n.input[bi]]
        if zp is not None:
            inputs[zi] = made[zp_name]
        else:  # absent zero point means 0 in s8, which is 128 in u8
            name = f"{n.name or n.op_type}_{count}_zp_u8"
            g.initializer.append(numpy_helper.from_array(np.array(128, dtype=np.uint8), name))
            inputs[zi] = name
        del n.input[:]
        n.input.extend(inputs)
        count += 1
    if count:
        still = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        keep = [t for t in g.initializer if t.name in still]
        del g.initializer[:]
        g.initializer.extend(keep)
    return count
