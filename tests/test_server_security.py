"""Hostile and careless clients against a real uvicorn server (in this process, over loopback):
API keys, CORS, headers, bodies that lie or never end, slow clients, connection limits, faults and
clients that go away."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time

import httpx
import psutil
import pytest
import uvicorn

from conftest import EXAMPLE, EXAMPLE_ENTITIES
from zhie.bench.run import free_port
from zhie.server.app import create_app
from zhie.server.auth import key_matches, load_api_keys, needs_key
from zhie.server.lifecycle import uvicorn_options
from zhie.server.settings import Settings

KEYS = "key-one-0123456789,key-two-abcdefghij"
GOOD = {"authorization": "Bearer key-two-abcdefghij"}


class ThreadServer:
    """uvicorn with the options `zhie serve` uses, on a thread (no signal handlers off the main thread)."""

    def __init__(self, settings: Settings):
        self.port = free_port()
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, lifespan="on", **uvicorn_options(settings))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 120
        while not self.server.started:
            assert self.thread.is_alive() and time.time() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def engine(self):
        return self.app.state.engine


@pytest.fixture(scope="module")
def srv():
    old = os.environ.get("ZHIE_HEADER_TIMEOUT_S")
    os.environ["ZHIE_HEADER_TIMEOUT_S"] = "1"  # read by the protocol for each new connection
    settings = Settings(threads=1, model_concurrency=1, max_text_chars=300, max_request_chars=1000, max_batch_items=8,
                        max_queue=32, sentiment_model="", extract_model="", api_keys=KEYS, body_timeout_s=1.0,
                        max_connections=24, log_level="warning")
    try:
        with ThreadServer(settings) as s:
            yield s
    finally:
        if old is None:
            os.environ.pop("ZHIE_HEADER_TIMEOUT_S", None)
        else:
            os.environ["ZHIE_HEADER_TIMEOUT_S"] = old


def raw(srv, data: bytes, *, read_timeout: float = 5.0) -> bytes:
    """Send bytes on a new connection and read until the server closes it (or the timeout)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=read_timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def status_of(response: bytes) -> int:
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", response)
    assert m, response[:200]
    return int(m.group(1))


# -- API keys ---------------------------------------------------------------------------------------
def test_no_key_or_a_wrong_key_is_401_with_a_bearer_challenge(srv):
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Basic a2V5LW9uZQ=="},
                    {"authorization": "Bearer key-one-012345678"}, {"authorization": "Bearer key-one-0123456789x"}):
        r = httpx.post(srv.url + "/v1/ner", json={"text": EXAMPLE}, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
        body = r.json()
        assert body["error"]["code"] in ("missing_api_key", "invalid_api_key") and body["request_id"]
        assert "key-one" not in r.text  # a key is never echoed


def test_a_right_key_is_served(srv):
    for key in KEYS.split(","):
        r = httpx.post(srv.url + "/v1/ner", json={"text": EXAMPLE}, headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 200
        assert [(e["type"], e["text"], e["start"], e["end"]) for e in r.json()["entities"]] == EXAMPLE_ENTITIES


def test_probes_page_docs_and_metrics_stay_open(srv):
    for path in ("/healthz", "/readyz", "/", "/openapi.json", "/docs", "/metrics", "/static/app.js"):
        assert httpx.get(srv.url + path).status_code == 200, path
    assert httpx.get(srv.url + "/v1/unknown").status_code == 401  # what is not listed open needs a key


def test_key_rules():
    assert key_matches(b"b", [b"a", b"b"]) and not key_matches(b"", [b"a"]) and not key_matches(b"a", [])
    assert needs_key("/metrics", True) and not needs_key("/metrics", False) and needs_key("/v1/ner", False)
    assert not needs_key("/static/app.js", True) and needs_key("/staticx", False)


def test_keys_file_and_its_errors(tmp_path):
    f = tmp_path / "keys"
    f.write_text("# ops keys\nfile-key-1\n\n  file-key-2  \n")
    assert load_api_keys(Settings(api_keys_file=str(f), api_keys="env-key")) == [b"env-key", b"file-key-1", b"file-key-2"]
    with pytest.raises(ValueError, match="cannot read the key file"):
        Settings(api_keys_file=str(tmp_path / "missing")).validate()
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no key"):
        Settings(api_keys_file=str(tmp_path / "empty")).validate()
    with pytest.raises(ValueError, match="printable ASCII"):
        Settings(api_keys="caf\u00e9").validate()


def test_metrics_auth_and_bool_env(monkeypatch):
    monkeypatch.setenv("ZHIE_METRICS_AUTH", "1")
    monkeypatch.setenv("ZHIE_API_KEYS", "k1")
    s = Settings.from_env()
    assert s.metrics_auth is True and "k1" not in repr(s)
    monkeypatch.setenv("ZHIE_METRICS_AUTH", "maybe")
    with pytest.raises(ValueError, match="ZHIE_METRICS_AUTH"):
        Settings.from_env()


def test_metrics_need_a_key_with_metrics_auth():
    from fastapi.testclient import TestClient

    app = create_app(Settings(threads=1, sentiment_model="", extract_model="", api_keys="m-key", metrics_auth=True))
    with TestClient(app) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"authorization": "Bearer m-key"}).status_code == 200
        assert c.get("/healthz").status_code == 200
        spec = c.get("/openapi.json").json()  # the contract says so too
        assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert spec["paths"]["/v1/ner"]["post"]["security"] == [{"bearer": []}]
        assert "401" in spec["paths"]["/v1/ner"]["post"]["responses"]
        assert "security" not in spec["paths"]["/healthz"]["get"]


# -- CORS and headers -------------------------------------------------------------------------------
def test_cors_is_off_by_default(srv):
    r = httpx.options(srv.url + "/v1/ner", headers={"origin": "https://evil.example", "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in r.headers
    r = httpx.post(srv.url + "/v1/ner", json={"text": "a"}, headers={**GOOD, "origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_allows_only_the_listed_origins():
    from fastapi.testclient import TestClient

    app = create_app(Settings(threads=1, sentiment_model="", extract_model="", api_keys="c-key",
                              cors_origins="https://app.example, https://ops.example"))
    pre = {"access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type"}
    with TestClient(app) as c:
        r = c.options("/v1/ner", headers={"origin": "https://app.example", **pre})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        r = c.options("/v1/ner", headers={"origin": "https://evil.example", **pre})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        r = c.post("/v1/ner", json={"text": "a"}, headers={"origin": "https://ops.example"})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "https://ops.example"  # readable 401


def test_security_headers_and_no_server_banner(srv):
    page = httpx.get(srv.url + "/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for r in (page, httpx.post(srv.url + "/v1/ner", json={"text": "a"}, headers=GOOD), httpx.get(srv.url + "/healthz"),
              httpx.post(srv.url + "/v1/ner", json={})):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "server" not in r.headers


LEAKS = re.compile(r"Traceback|File \"|site-packages|/work/|/home/|\.py\b|uvicorn|starlette|fastapi|pydantic|python|onnx", re.I)


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/v1/ner", b"{bad json"), ("POST", "/v1/ner", b"\xff\xfe"), ("POST", "/v1/ner", b'{"text": 5}'),
    ("POST", "/v1/ner", b'{"texts": [' + b'"a",' * 9 + b'"a"]}'), ("GET", "/v1/ner", b""), ("POST", "/nope", b"{}"),
    ("POST", "/v1/sentiment", b'{"text": "a"}'), ("POST", "/v1/extract", b'{"text": "a", "schema": ["x"]}'),
    ("POST", "/analyze", b"[]"), ("POST", "/v1/ner", b'{"text": "' + b"a" * 400 + b'"}'),
])
def test_error_answers_leak_no_trace_path_or_version(srv, method, path, body):
    r = httpx.request(method, srv.url + path, content=body, headers=GOOD)
    assert 400 <= r.status_code < 600
    assert not LEAKS.search(r.text), r.text
    assert not LEAKS.search(" ".join(f"{k}: {v}" for k, v in r.headers.items())), r.headers


def test_a_model_call_that_raises_fails_only_its_batch(srv, monkeypatch):
    b = srv.engine.batchers["ner"]
    real = b.fn

    def flaky(texts):
        if any("BOOM" in t for t in texts):
            raise RuntimeError("/secret/path/model.onnx exploded")
        return real(texts)

    monkeypatch.setattr(b, "fn", flaky)
    r = httpx.post(srv.url + "/v1/ner", json={"text": "BOOM"}, headers={**GOOD, "x-request-id": "rid-7"})
    assert r.status_code == 500 and r.json()["request_id"] == "rid-7" and "rid-7" in r.json()["error"]["message"]
    assert "secret" not in r.text
    r = httpx.post(srv.url + "/v1/ner", json={"text": EXAMPLE}, headers=GOOD)  # the next batch is served
    assert r.status_code == 200 and len(r.json()["entities"]) == 5


# -- bodies, slow clients, connections --------------------------------------------------------------
def head(path="/v1/ner", extra=b"") -> bytes:
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nhost: x\r\nauthorization: " + GOOD["authorization"].encode()
            + b"\r\ncontent-type: application/json\r\n" + extra)


def test_declared_length_over_the_limit_is_413_before_the_body(srv):
    out = raw(srv, head(extra=b"content-length: 2000000000\r\n\r\n"))
    assert status_of(out) == 413 and b"request_too_large" in out


def test_chunked_2gb_body_is_cut_off_at_the_limit_with_flat_memory(srv):
    """No Content-Length: the body streams in chunks until the server has seen the limit, answers 413
    and closes; the client could not have sent its 2 GB (the server reads about the limit only)."""
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    limit = srv.engine.max_body_bytes
    chunk = b"a" * 65536
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(head(extra=b"transfer-encoding: chunked\r\n\r\n") + b"a\r\n{\"text\": \"\r\n")
        try:
            while sent < 2 * 1024**3:
                s.sendall(frame)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            out = s.recv(65536)
        except ConnectionResetError:
            out = b""
    # what the client got out before the reset: the limit plus what the kernel's socket buffers held
    assert sent < limit + 16 * 1024**2, f"{sent} bytes went out for a body limited to {limit}"
    if out:  # the 413 itself can be lost to the reset of a connection closed with unread data
        assert status_of(out) == 413
    print(f"sent {sent} bytes before the cut; answer: {out[:12]!r}")
    assert proc.memory_info().rss - rss0 < 64 * 1024**2
    assert httpx.get(srv.url + "/healthz").status_code == 200


def test_chunked_body_over_the_limit_gets_413(srv):
    limit = srv.engine.max_body_bytes
    body = json.dumps({"text": "a" * (limit + 10)}).encode()
    chunks = b"".join(b"%x\r\n" % len(body[i:i + 4096]) + body[i:i + 4096] + b"\r\n" for i in range(0, len(body), 4096))
    out = raw(srv, head(extra=b"transfer-encoding: chunked\r\n\r\n") + chunks + b"0\r\n\r\n")
    assert status_of(out) == 413 and b"request_too_large" in out


def test_false_content_length(srv):
    body = json.dumps({"text": EXAMPLE}).encode()
    # shorter than the body: the server reads what was declared; the rest is not a request
    out = raw(srv, head(extra=b"content-length: %d\r\n\r\n" % 5) + body)
    assert status_of(out) == 400
    # longer than the body: the body never completes -> 408 after ZHIE_BODY_TIMEOUT_S (1 s here)
    t0 = time.time()
    out = raw(srv, head(extra=b"content-length: %d\r\n\r\n" % (len(body) + 50)) + body)
    assert status_of(out) == 408 and b"body_timeout" in out and time.time() - t0 < 4


def test_slow_headers_are_cut_off(srv):
    """Slowloris: one header byte every 0.2 s never completes a request head within 1 s."""
    t0 = time.time()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        try:
            for b in b"POST /v1/ner HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 100:
                s.send(bytes([b]))
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            out = s.recv(1000)
        except ConnectionResetError:
            out = b""
    assert time.time() - t0 < 4
    assert out.startswith(b"HTTP/1.1 408") or out == b""


def test_idle_connection_without_a_request_is_closed(srv):
    t0 = time.time()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        assert s.recv(1000).startswith(b"HTTP/1.1 408")
    assert time.time() - t0 < 3


def test_open_connections_are_bounded(srv):
    idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(24)]
    try:
        time.sleep(0.2)
        r = httpx.get(srv.url + "/healthz")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "too_many_connections"
    finally:
        for s in idle:
            s.close()
    time.sleep(0.3)
    assert httpx.get(srv.url + "/healthz").status_code == 200


# -- clients that go away ---------------------------------------------------------------------------
def gone_count(srv) -> float:
    m = httpx.get(srv.url + "/metrics").text
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in m.splitlines()
               if ln.startswith("zhie_requests_total{") and 'status="499"' in ln and '"/v1/ner"' in ln)


def test_disconnected_clients_work_is_dropped_before_compute(srv, monkeypatch):
    b = srv.engine.batchers["ner"]
    real = b.fn
    seen: list[str] = []
    gate = threading.Event()

    def slow(texts):
        seen.extend(texts)
        if "HOLD" in texts:
            gate.wait(10)  # the single model slot stays busy while the others queue and leave
        return real(texts)

    monkeypatch.setattr(b, "fn", slow)
    holder: list = []
    t = threading.Thread(target=lambda: holder.append(httpx.post(srv.url + "/v1/ner", json={"text": "HOLD"}, headers=GOOD, timeout=30)))
    t.start()
    deadline = time.time() + 10
    while "HOLD" not in seen:
        assert time.time() < deadline
        time.sleep(0.01)
    gone = [f"走了{i}" for i in range(6)]
    for text in gone:  # each sends a full request, then hangs up without reading
        body = json.dumps({"text": text}, ensure_ascii=False).encode()
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(head(extra=b"content-length: %d\r\n\r\n" % len(body)) + body)
            time.sleep(0.05)
    deadline = time.time() + 5
    while gone_count(srv) < len(gone):  # the server notices each hang-up and gives the text up (499)
        assert time.time() < deadline, "hang-ups not noticed"
        time.sleep(0.02)
    gate.set()
    t.join(30)
    assert holder and holder[0].status_code == 200
    r = httpx.post(srv.url + "/v1/ner", json={"text": EXAMPLE}, headers=GOOD)
    assert r.status_code == 200
    assert not set(gone) & set(seen), "a departed client's text reached the model"


# -- the web page asks for a key ----------------------------------------------------------------------
def test_page_asks_for_a_key_on_401_and_keeps_it_in_session_storage_only(srv):
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed: run `make browser-deps`")
    from test_browser import _chromium

    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium binary: run `make browser-deps`")
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        except PlaywrightError as e:
            pytest.skip(f"Chromium does not start: {str(e).splitlines()[0]}")
        ctx = browser.new_context(base_url=srv.url)
        ctx.set_default_timeout(20_000)
        pg = ctx.new_page()
        sent: list = []
        pg.on("request", lambda r: sent.append(r.headers.get("authorization")) if r.url.endswith("/v1/ner") else None)
        pg.goto("/")
        pg.wait_for_selector("html[data-ready=true]")
        assert pg.is_hidden("#key-form")
        pg.fill("#ner-input", EXAMPLE)
        pg.click("#ner-run")
        pg.wait_for_selector("#key-form:not([hidden])")  # the server said 401
        pg.fill("#key-input", "wrong-key")
        pg.click("[data-testid=key-submit]")
        pg.wait_for_selector("#key-title:has-text('not accepted')")
        pg.fill("#key-input", "key-one-0123456789")
        pg.click("[data-testid=key-submit]")
        pg.wait_for_selector("#ner-result:not([hidden])")
        assert pg.text_content("#ner-total") == str(len(EXAMPLE_ENTITIES))
        assert sent == [None, "Bearer wrong-key", "Bearer key-one-0123456789"]
        assert pg.evaluate("sessionStorage.getItem('zhie.apiKey')") == "key-one-0123456789"
        assert "key-one" not in pg.evaluate("JSON.stringify(localStorage)") and "key-one" not in str(ctx.cookies())
        with pg.expect_response("**/v1/ner") as resp:  # the next request sends the stored key at once
            pg.click("#ner-run")
        assert resp.value.status == 200
        assert sent[-1] == "Bearer key-one-0123456789" and pg.is_hidden("#key-form")
        fresh = browser.new_context(base_url=srv.url).new_page()  # another tab's session: no key
        fresh.goto("/")
        assert fresh.evaluate("sessionStorage.getItem('zhie.apiKey')") is None
        browser.close()
