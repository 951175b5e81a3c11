"""`zhie serve --workers 2`: two processes that both answer and share one copy of the weights."""

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from conftest import EXAMPLE, EXAMPLE_ENTITIES
from zhie.bench.run import free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory maps read from /proc")


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    port = free_port()
    cache = tmp_path_factory.mktemp("cache")
    env = {**os.environ, "ZHIE_CACHE_DIR": str(cache), "ZHIE_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "zhie.cli", "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield proc, url, cache
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


def test_every_worker_answers_the_same(two_workers):
    proc, url, _ = two_workers
    # one new connection per request, so the kernel spreads them over both workers
    bodies = [httpx.post(url + "/v1/ner", json={"text": EXAMPLE}, timeout=60).json() for _ in range(12)]
    want = [list(e) for e in EXAMPLE_ENTITIES]
    for b in bodies:
        assert [[e["type"], e["text"], e["start"], e["end"]] for e in b["entities"]] == want
    workers = psutil.Process(proc.pid).children()
    assert len(workers) == 2 and all(w.is_running() for w in workers)


def test_workers_map_the_same_weight_files(two_workers):
    proc, url, cache = two_workers
    for _ in range(8):
        httpx.post(url + "/v1/ner", json={"text": EXAMPLE}, timeout=60)
    workers = psutil.Process(proc.pid).children()
    mapped = []
    for w in workers:
        files = {m.path for m in w.memory_maps() if m.path.startswith(str(cache))}
        mapped.append({f for f in files if f.endswith("model.onnx.data")})
    assert mapped[0] and mapped[0] == mapped[1]  # one file, mapped by both: its pages are in memory once
