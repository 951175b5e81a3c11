"""--device auto|cpu|cuda and the GPU → CPU fallback, on a machine without a GPU.

The failing "GPU" is a real ONNX Runtime session of the bundled NER model whose calls ORT itself
stops (RunOptions.terminate), or that starts past its deadline: no GPU and no mock model needed."""

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient

from conftest import EXAMPLE, EXAMPLE_ENTITIES
from zhie import cli
from zhie.models.bundle import load_bundle
from zhie.runtime.device import DeviceSession, DeviceUnavailable, GpuPolicy, Placement, cuda_problem, resolve_device
from zhie.runtime.session import OnnxSession
from zhie.server.app import create_app
from zhie.server.settings import Settings

NO_CUDA = "CUDAExecutionProvider" not in ort.get_available_providers()
needs_no_cuda = pytest.mark.skipif(not NO_CUDA, reason="this machine has the CUDA provider")


class _BrokenOrt:
    """An ORT InferenceSession whose calls fail in ORT while ``broken`` is set (ORT's own terminate
    flag stops them), and that first sleeps ``delay`` seconds (a GPU call running late)."""

    def __init__(self, sess: ort.InferenceSession):
        self._s = sess
        self.broken = False
        self.delay = 0.0
        self.calls = 0

    def io_binding(self):
        return self._s.io_binding()

    def _before(self, ro):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.broken:
            ro.terminate = True

    def run_with_iobinding(self, binding, ro):
        self._before(ro)
        return self._s.run_with_iobinding(binding, ro)

    def run(self, names, feeds, ro):
        self._before(ro)
        return self._s.run(names, feeds, ro)


def _flaky(path) -> tuple[OnnxSession, _BrokenOrt]:
    s = OnnxSession(path, threads=1)
    s.session = _BrokenOrt(s.session)
    return s, s.session


@pytest.fixture(scope="module")
def ner_path():
    return load_bundle("ner").onnx_path


@pytest.fixture(scope="module")
def cpu_session(ner_path):
    return OnnxSession(ner_path, threads=1)


def _feeds(n: int = 12):
    ids = np.array([[0] + list(range(200, 200 + n)) + [2]], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


# -- choosing the device -------------------------------------------------------------------------
@needs_no_cuda
def test_cuda_without_gpu_runtime_refuses_and_names_what_is_missing():
    with pytest.raises(DeviceUnavailable, match="onnxruntime-gpu is not installed"):
        resolve_device("cuda")
    device, why = resolve_device("auto")
    assert device == "cpu" and "onnxruntime-gpu" in why
    assert resolve_device("cpu") == ("cpu", "asked for")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device("gpu")


def test_cuda_provider_but_no_visible_device(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert cuda_problem().startswith("no visible CUDA device: CUDA_VISIBLE_DEVICES=''")
    with pytest.raises(DeviceUnavailable, match="--device cuda: no visible CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto")[0] == "cpu"


@needs_no_cuda
def test_serve_device_cuda_exits_non_zero_with_the_reason(capsys):
    assert cli.main(["serve", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "onnxruntime-gpu" in err and "Traceback" not in err


def test_settings_accept_auto_and_check_the_gpu_fields(monkeypatch):
    monkeypatch.setenv("ZHIE_DEVICE", "auto")
    monkeypatch.setenv("ZHIE_GPU_FAILURES", "5")
    s = Settings.from_env()
    assert s.device == "auto" and s.gpu_failures == 5
    with pytest.raises(ValueError, match="ZHIE_GPU_FAILURES"):
        Settings.from_env(gpu_failures=0)
    with pytest.raises(ValueError, match="'auto', 'cpu' or 'cuda'"):
        Settings.from_env(device="tpu")


# -- the fallback ---------------------------------------------------------------------------------
def test_io_binding_gives_the_plain_call_s_outputs(ner_path, cpu_session):
    gpu, _ = _flaky(ner_path)
    ds = DeviceSession("ner", cpu_session, gpu, primary_device="cpu-as-gpu")
    (y,) = ds._run_primary(_feeds())
    (ref,) = cpu_session.run(**_feeds())
    np.testing.assert_array_equal(y, ref)


def test_failures_in_a_row_move_the_task_to_the_cpu_and_every_call_is_answered(ner_path, cpu_session):
    gpu, broken = _flaky(ner_path)
    p = Placement("cpu", GpuPolicy(failures=3, deadline_s=30, cooldown_s=0.3))
    ds = DeviceSession("ner", cpu_session, gpu, policy=p.policy, observer=p)
    (ref,) = cpu_session.run(**_feeds())
    assert ds.device == "cuda" and np.array_equal(ds.run(**_feeds())[0], ref)
    broken.broken = True
    for k in range(1, 4):
        (y,) = ds.run(**_feeds())  # answered by the CPU model
        np.testing.assert_array_equal(y, ref)
        assert ds.in_a_row == k
    assert ds.device == "cpu" and ds.fallbacks == 1 and "terminate" in ds.last_error.lower()
    calls = broken.calls
    ds.run(**_feeds())
    assert broken.calls == calls  # on the CPU: the GPU is left alone until the cool-down ends
    time.sleep(0.35)
    ds.run(**_feeds())  # the probe fails: still on the CPU, next probe one cool-down later
    assert broken.calls == calls + 1 and ds.device == "cpu" and ds.fallbacks == 1
    ds.run(**_feeds())
    assert broken.calls == calls + 1
    broken.broken = False
    time.sleep(0.35)
    np.testing.assert_array_equal(ds.run(**_feeds())[0], ref)  # the probe succeeds: back on the GPU
    assert ds.device == "cuda" and ds.in_a_row == 0 and ds.describe()["on_cpu_since"] is None
    text = p.fallback_total.labels("ner")._value.get(), p.failure_total.labels("ner", "error")._value.get()
    assert text == (1, 4)


def test_a_call_past_its_deadline_counts_as_a_failure(ner_path, cpu_session):
    gpu, slow = _flaky(ner_path)
    slow.delay = 0.2
    ds = DeviceSession("ner", cpu_session, gpu, policy=GpuPolicy(failures=2, deadline_s=0.05, cooldown_s=60))
    (ref,) = cpu_session.run(**_feeds())
    for _ in range(2):
        np.testing.assert_array_equal(ds.run(**_feeds())[0], ref)
    assert ds.device == "cpu" and ds.last_error.startswith("deadline")


def test_an_input_the_cpu_rejects_too_is_not_a_gpu_failure(ner_path, cpu_session):
    gpu, _ = _flaky(ner_path)
    ds = DeviceSession("ner", cpu_session, gpu, policy=GpuPolicy(failures=1))
    bad = {"input_ids": np.zeros((1, 3), dtype=np.float32), "attention_mask": np.ones((1, 3), dtype=np.int64)}
    with pytest.raises(Exception):
        ds.run(**bad)
    assert ds.device == "cuda" and ds.failures == 0


# -- through the server ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    app = create_app(Settings(device="auto", threads=1, model_concurrency=2, sentiment_model="", extract_model="",
                              gpu_failures=3, gpu_cooldown_s=0.5))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@needs_no_cuda
def test_auto_serves_on_the_cpu_and_readyz_says_so(client):
    r = client.get("/readyz").json()
    assert r["devices"] == {"ner": "cpu"}
    assert r["device"]["requested"] == "auto" and r["device"]["device"] == "cpu" and "onnxruntime-gpu" in r["device"]["reason"]
    client.post("/v1/ner", json={"text": EXAMPLE})
    m = client.get("/metrics").text
    assert 'zhie_device_inference_seconds_count{device="cpu",task="ner"}' in m
    assert 'zhie_task_device{device="cpu",task="ner"} 1.0' in m


def _spans(body):
    return [(e["type"], e["text"], e["start"], e["end"]) for e in body["entities"]]


def test_requests_during_the_switch_are_all_answered(client, ner_path):
    eng = client.app.state.engine
    gpu, broken = _flaky(ner_path)
    ds = eng.placement.attach("ner", eng.ner, primary=gpu)  # the injected "GPU" session
    assert client.get("/readyz").json()["devices"] == {"ner": "cuda"}
    broken.broken = True
    texts = [EXAMPLE[: 20 + k] for k in range(24)]
    with ThreadPoolExecutor(6) as pool:
        rs = list(pool.map(lambda t: client.post("/v1/ner", json={"text": t}), texts))
    assert [r.status_code for r in rs] == [200] * len(texts)  # none lost
    want = [[e for e in EXAMPLE_ENTITIES if e[3] <= len(t)] for t in texts]
    assert [_spans(r.json())[: len(w)] for r, w in zip(rs, want)] == want
    ready = client.get("/readyz").json()
    assert ready["devices"] == {"ner": "cpu"}
    t = ready["device"]["tasks"]["ner"]
    assert t["fallbacks"] == 1 and t["failures_in_a_row"] >= 3 and t["on_cpu_since"]
    m = client.get("/metrics").text
    assert 'zhie_gpu_fallbacks_total{task="ner"} 1.0' in m
    assert 'zhie_task_device{device="cpu",task="ner"} 1.0' in m
    broken.broken = False
    time.sleep(0.55)
    r = client.post("/v1/ner", json={"text": EXAMPLE})
    assert r.status_code == 200 and _spans(r.json()) == EXAMPLE_ENTITIES
    assert client.get("/readyz").json()["devices"] == {"ner": "cuda"} and ds.device == "cuda"
    assert 'zhie_task_device{device="cuda",task="ner"} 1.0' in client.get("/metrics").text
