"""Graceful shutdown of a real `zhie serve` process: SIGTERM with long requests in flight.

Before the fix, 40 long NER requests in flight at SIGTERM got 22 answers and 18 x 500 (uvicorn
cancelled them after a fixed 10 s and answered 500 itself), and the process exited with -15.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from zhie.bench.run import free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals and process groups")

LONG = ("华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。" * 20)[:150]


def start(tmp_path: Path, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    e = {**os.environ, "ZHIE_LOG_LEVEL": "info", "ZHIE_SENTIMENT_MODEL": "", "ZHIE_EXTRACT_MODEL": "", **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "zhie.cli", "serve", "--port", str(port), *args], env=e,
                            stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url, log
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    raise AssertionError("server not ready: " + log.read_text())


@pytest.fixture
def serve(tmp_path):
    """start(), with any server a failed test leaves running killed at teardown."""
    procs: list[subprocess.Popen] = []

    def _start(*args: str, env: dict | None = None):
        proc, url, log = start(tmp_path, *args, env=env)
        procs.append(proc)
        return proc, url, log

    yield _start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def fire(url: str, n: int, results: list, text: str = LONG) -> list[threading.Thread]:
    """n concurrent requests, each on its own connection; results get (status, retry-after) or the error."""

    def one() -> None:
        try:
            r = httpx.post(url + "/v1/ner", json={"text": text}, timeout=120)
            results.append((r.status_code, r.headers.get("retry-after")))
        except httpx.HTTPError as e:
            results.append(("error", type(e).__name__))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def wait_in_flight(url: str, n: int, results: list, timeout: float = 30) -> int:
    """Until all n requests have reached the server (being handled, or answered already: the first
    few are answered before the last have connected); returns how many are in flight."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = httpx.get(url + "/metrics", timeout=5).text
        done = len(results)
        busy = [int(float(ln.split()[1])) - 1 for ln in m.splitlines() if ln.startswith("zhie_requests_in_progress ")]
        if busy and busy[0] + done >= n:  # -1: this scrape
            return busy[0]
        time.sleep(0.05)
    raise AssertionError("the requests never all reached the server")


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            return s.recv(100) == b""  # accepted by the kernel queue, then dropped unanswered
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    except socket.timeout:
        return False


def test_sigterm_answers_every_request_in_flight_and_exits_0(serve):
    proc, url, log = serve()
    results: list = []
    threads = fire(url, 40, results, LONG * 2)
    # on an idle machine the first requests are answered while the last still connect: at least half in
    # flight at SIGTERM is what this test needs (all of them in the acceptance run)
    assert wait_in_flight(url, 40, results) >= 20
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGTERM)
    time.sleep(0.5)
    assert refused(url), "a new connection was accepted after SIGTERM"
    for t in threads:
        t.join(60)
    assert proc.wait(60) == 0, log.read_text()
    assert sorted(map(str, results)) == [str((200, None))] * 40, results
    assert time.time() - t0 < 30  # the default drain time (ZHIE_DRAIN_S)
    assert "Traceback" not in log.read_text()


def test_sigterm_past_the_drain_time_sheds_with_503_not_500(serve):
    """More queued work than the drain time allows: what cannot finish is answered 503 + Retry-After
    (retry elsewhere) before the deadline; nothing is a 500 or a reset connection; exit 0 in time."""
    proc, url, log = serve("--batch-chars", "1600", env={"ZHIE_DRAIN_S": "3"})
    results: list = []
    threads = fire(url, 60, results, LONG * 4)
    assert wait_in_flight(url, 60, results) >= 50
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGTERM)
    for t in threads:
        t.join(60)
    answered = time.time() - t0
    assert proc.wait(30) == 0, log.read_text()  # exit waits for the model call still running to end
    assert answered < 3 + 1.5
    codes = [r[0] for r in results]
    assert len(results) == 60 and set(codes) <= {200, 503}, results
    assert 503 in codes and 200 in codes
    assert all(ra == "1" for c, ra in results if c == 503)


def test_each_worker_drains_under_workers_2(serve):
    proc, url, log = serve("--workers", "2")
    results: list = []
    threads = fire(url, 40, results)
    time.sleep(3)  # /metrics reaches one worker only: give both time to take their share
    os.killpg(proc.pid, signal.SIGTERM)
    time.sleep(0.5)
    assert refused(url)
    for t in threads:
        t.join(60)
    assert proc.wait(60) == 0, log.read_text()
    assert [r[0] for r in results] == [200] * 40, results


def test_draining_readyz_is_503_and_past_the_shed_point_new_work_is_503_retry_after():
    """In process (no signal): what the SIGTERM hook starts, step by step."""
    from fastapi.testclient import TestClient

    from zhie.server.app import create_app
    from zhie.server.settings import Settings

    app = create_app(Settings(threads=1, sentiment_model="", extract_model="", drain_s=0.4))
    with TestClient(app) as c:
        eng = app.state.engine
        assert c.get("/readyz").status_code == 200
        loop = c.portal.call(asyncio.get_running_loop)
        eng.drain.begin(loop, eng.shed)
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json() == {"status": "draining"} and r.headers["retry-after"] == "1"
        assert c.post("/v1/ner", json={"text": "任正非在深圳"}).status_code == 200  # accepted work is still served
        time.sleep(0.5)  # past shed_at (0.2 s) and last_call (0.36 s)
        r = c.post("/v1/ner", json={"text": "任正非在深圳"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down" and r.headers["retry-after"] == "1"


def test_bad_settings_stop_serve_with_a_message_naming_the_variable(tmp_path):
    for env, want in (({"ZHIE_API_KEYS_FILE": str(tmp_path / "none")}, "ZHIE_API_KEYS_FILE: cannot read the key file"),
                      ({"ZHIE_DRAIN_S": "0"}, "ZHIE_DRAIN_S: must be positive"),
                      ({"ZHIE_METRICS_AUTH": "perhaps"}, "ZHIE_METRICS_AUTH='perhaps': expected bool")):
        run = subprocess.run([sys.executable, "-m", "zhie.cli", "serve", "--port", "1"], env={**os.environ, **env},
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and want in run.stderr and "Traceback" not in run.stderr, run.stderr
