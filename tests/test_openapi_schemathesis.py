"""/openapi.json says what the server accepts: checked by schemathesis (all checks) against a live
`zhie serve`, with a fixed seed and a bounded number of examples, and by reading the document."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from zhie.bench.run import free_port
from zhie.server.app import create_app
from zhie.server.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def test_bodies_are_one_of_text_or_texts_with_the_limits():
    app = create_app(Settings(threads=1, sentiment_model="", extract_model="", max_text_chars=300, max_request_chars=1000,
                              max_batch_items=4, max_schema_depth=2, max_schema_nodes=10))
    spec = app.openapi()
    body = spec["paths"]["/v1/ner"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    text_form, texts_form = body["oneOf"]
    assert text_form["required"] == ["text"] and text_form["additionalProperties"] is False
    assert text_form["properties"]["text"]["maxLength"] == 300 and text_form["properties"]["texts"] == {"type": "null"}
    assert texts_form["properties"]["texts"]["maxItems"] == 4
    assert texts_form["properties"]["texts"]["items"]["maxLength"] == 300
    ext = spec["paths"]["/v1/extract"]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0]
    assert ext["required"] == ["text", "schema"] and "ZHIE_MAX_SCHEMA_NODES" in ext["properties"]["schema"]["description"]
    for path, codes in {"/v1/ner": {"400", "408", "413", "422", "500", "503"}, "/analyze": {"400", "408", "413", "500", "503"}}.items():
        responses = spec["paths"][path]["post"]["responses"]
        assert codes <= set(responses), path
        for c in codes:
            assert responses[c]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        assert "Retry-After" in responses["503"]["headers"]
        assert "401" not in responses and "security" not in spec["paths"][path]["post"]  # no keys set
    assert "HTTPValidationError" not in str(spec)  # FastAPI's error shape is never sent


def test_the_schema_rejects_what_the_server_rejects():
    """The cases the issue found (`{"text": null, "texts": null}`, `{"text": ""}` on /analyze) are
    now outside the schema, and the server answers them 4xx."""
    jsonschema = pytest.importorskip("jsonschema_rs")
    app = create_app(Settings(threads=1, extract_model="", analyze_max_chars=20))
    spec = app.openapi()
    with TestClient(app) as c:
        for path, bodies in {
            "/v1/ner": [{"text": None, "texts": None}, {}, {"text": "a", "texts": ["b"]}, {"txt": "a"}, {"texts": [1]}],
            "/analyze": [{"text": ""}, {"text": "   "}, {"text": "a" * 21}, {}],
        }.items():
            schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
            v = jsonschema.validator_for(schema)
            for b in bodies:
                assert not v.is_valid(b), (path, b)
                assert 400 <= c.post(path, json=b).status_code < 500, (path, b)
            for b in ({"text": "很好"}, {"text": "很好", "texts": None}) if path == "/v1/ner" else ({"text": "很好"},):
                assert v.is_valid(b) and c.post(path, json=b).status_code in (200, 503), (path, b)


@pytest.mark.skipif(shutil.which("schemathesis", path=str(Path(sys.executable).parent)) is None,
                    reason="schemathesis is not installed (pip install -e '.[dev]')")
def test_schemathesis_all_checks_pass_against_a_live_server(tmp_path):
    """Small limits keep the boundary cases cheap (a maxLength string is run through the model); the
    rules checked are the same at any limit. API keys on, so the auth checks run too."""
    port = free_port()
    env = {**os.environ, "ZHIE_API_KEYS": "st-key", "ZHIE_LOG_LEVEL": "warning", "ZHIE_MAX_SCHEMA_NODES": "8",
           "ZHIE_MAX_SCHEMA_DEPTH": "2"}
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "zhie.cli", "serve", "--port", str(port), "--max-text-chars", "64",
                             "--max-request-chars", "256", "--max-batch-items", "4"], env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        st = Path(sys.executable).parent / "schemathesis"
        run = subprocess.run([str(st), "run", url + "/openapi.json", "--checks", "all", "--seed", "1", "--max-examples", "10",
                              # one worker: schemathesis's threads hit CPython 3.11's "AST constructor recursion
                              # depth mismatch" when hypothesis parses lambdas in two at once (a flaky Runtime Error)
                              "--workers", "1", "--request-timeout", "60", "--no-color", "-H", "Authorization: Bearer st-key",
                              "--report", "junit", "--report-dir", str(tmp_path)],
                             cwd=REPO, capture_output=True, text=True, timeout=600)  # cwd: reads schemathesis.toml
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert "No issues found" in run.stdout
        assert "Tested: 6" in run.stdout  # every operation (ner, sentiment, extract, analyze, healthz, readyz)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
