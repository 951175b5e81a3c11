"""The pre-packed model cache: the same numbers as the model file, made once, shared by mapping."""

import os
import threading

import numpy as np
import pytest

from zhie.models.bundle import load_bundle
from zhie.runtime.session import OnnxSession, prepacked_model

MODEL = load_bundle("ner").onnx_path


def _feeds(batch, seq, seed=0):
    x = np.random.default_rng(seed).integers(4, 7000, size=(batch, seq)).astype(np.int64)
    x[:, 0], x[:, -1] = 0, 2
    return {"input_ids": x, "attention_mask": np.ones_like(x)}


def test_cached_model_gives_bit_identical_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("ZHIE_CACHE_DIR", str(tmp_path))
    direct = OnnxSession(MODEL, threads=1, cache=False)
    cached = OnnxSession(MODEL, threads=1)
    for batch, seq in [(1, 7), (4, 40)]:
        f = _feeds(batch, seq)
        assert np.array_equal(direct.run(**f)[0], cached.run(**f)[0])


def test_cache_is_made_once_and_keyed_by_model_bytes(tmp_path):
    a = prepacked_model(MODEL, tmp_path)
    assert a != MODEL and a.is_file() and (a.parent / "model.onnx.data").is_file()
    mtime = a.stat().st_mtime_ns
    assert prepacked_model(MODEL, tmp_path) == a and a.stat().st_mtime_ns == mtime
    other = tmp_path / "copy" / "model.onnx"
    other.parent.mkdir()
    other.write_bytes(MODEL.read_bytes())
    assert prepacked_model(other, tmp_path) == a  # same bytes, same entry
    sentiment = load_bundle("sentiment").onnx_path if "sentiment" in os.listdir(MODEL.parents[1]) else None
    if sentiment is not None:
        assert prepacked_model(sentiment, tmp_path) != a


def test_sessions_map_the_cached_weights_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ZHIE_CACHE_DIR", str(tmp_path))
    s = OnnxSession(MODEL, threads=1)
    s.run(**_feeds(1, 10))
    data = prepacked_model(MODEL, tmp_path).parent / "model.onnx.data"
    maps = open(f"/proc/{os.getpid()}/maps").read() if os.path.exists("/proc/self/maps") else pytest.skip("no /proc")
    assert str(data) in maps  # memory-mapped, so other workers share these pages


def test_concurrent_first_loads_agree(tmp_path):
    out = []
    ts = [threading.Thread(target=lambda: out.append(prepacked_model(MODEL, tmp_path))) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(set(out)) == 1 and out[0].is_file()
    assert not [p for p in (tmp_path / "ort").iterdir() if p.name.startswith(".")]  # no temp folders left


def test_unusable_cache_falls_back_to_the_model_file(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert prepacked_model(MODEL, blocker) == MODEL
    monkeypatch.setenv("ZHIE_CACHE_DIR", "off")
    s = OnnxSession(MODEL, threads=1)
    assert s.run(**_feeds(1, 5))[0].shape[:2] == (1, 5)


def test_packing_happens_in_a_child_process_and_falls_back_to_this_one(tmp_path, monkeypatch):
    """What packing allocates must leave with a child process (the serving one would keep ~90 MB of freed
    heap); where no child can start, this process packs."""
    from zhie.runtime import session

    real_pack = session._pack

    def not_here(*a):
        raise AssertionError("packed in the serving process")

    monkeypatch.setattr(session, "_pack", not_here)
    a = prepacked_model(MODEL, tmp_path / "child")
    assert a != MODEL and a.is_file()
    monkeypatch.setattr(session, "_pack", real_pack)
    monkeypatch.setattr(session.sys, "executable", str(tmp_path / "no-python"))
    b = prepacked_model(MODEL, tmp_path / "here")
    assert b != MODEL and b.is_file() and b.read_bytes() == a.read_bytes()
