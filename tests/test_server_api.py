"""The HTTP API against the real bundled model, in process."""

import pytest
from fastapi.testclient import TestClient

from conftest import EXAMPLE, EXAMPLE_ENTITIES
from zhie.server.app import create_app
from zhie.server.settings import Settings


@pytest.fixture(scope="module")
def client():
    app = create_app(Settings(max_text_chars=300, max_request_chars=1000, max_batch_items=4, threads=2))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _spans(body):
    return [(e["type"], e["text"], e["start"], e["end"]) for e in body["entities"]]


def test_api_ner_single_text(client):
    r = client.post("/v1/ner", json={"text": EXAMPLE})
    assert r.status_code == 200
    body = r.json()
    assert _spans(body) == EXAMPLE_ENTITIES
    assert all(0 < e["score"] <= 1 for e in body["entities"])
    assert r.headers["x-request-id"]


def test_api_ner_texts_returns_one_result_per_text_in_order(client):
    r = client.post("/v1/ner", json={"texts": ["😀" + EXAMPLE, "", EXAMPLE]})
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list) and len(body) == 3
    assert _spans(body[0]) == [(t, s, a + 1, b + 1) for t, s, a, b in EXAMPLE_ENTITIES]
    assert body[1] == {"entities": []}
    assert _spans(body[2]) == EXAMPLE_ENTITIES


def test_api_ner_accepts_json_without_content_type(client):
    r = client.post("/v1/ner", content=('{"text": "%s"}' % EXAMPLE).encode())
    assert r.status_code == 200 and _spans(r.json()) == EXAMPLE_ENTITIES


@pytest.mark.parametrize(
    "payload, status, field",
    [
        ({}, 422, "body"),
        ({"text": "a", "texts": ["b"]}, 422, "body"),
        ({"text": 5}, 422, "text"),
        ({"texts": ["ok", 3]}, 422, "texts.1"),
        ({"texts": "not a list"}, 422, "texts"),
        ({"txt": "typo"}, 422, "txt"),
    ],
)
def test_api_ner_bad_fields_name_the_field(client, payload, status, field):
    r = client.post("/v1/ner", json=payload)
    assert r.status_code == status
    err = r.json()
    assert err["error"]["field"] == field
    assert field in err["error"]["message"] or field == "body"
    assert err["request_id"]


@pytest.mark.parametrize("raw", [b"", b"{not json", b"\xff\xfe"])
def test_api_ner_body_that_is_not_json_is_400(client, raw):
    r = client.post("/v1/ner", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "body"


def test_api_ner_text_over_limit_is_413(client):
    r = client.post("/v1/ner", json={"text": "中" * 301})
    assert r.status_code == 413
    assert "300" in r.json()["error"]["message"] and r.json()["error"]["field"] == "text"


def test_api_ner_request_over_total_limit_is_413(client):
    r = client.post("/v1/ner", json={"texts": ["中" * 300] * 4})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_api_ner_too_many_items_is_413(client):
    r = client.post("/v1/ner", json={"texts": ["a"] * 5})
    assert r.status_code == 413 and r.json()["error"]["field"] == "texts"


def test_api_internal_error_is_500_with_request_id_and_server_keeps_serving(client, monkeypatch):
    eng = client.app.state.engine

    def boom(texts):
        raise RuntimeError("simulated failure inside the model call")

    monkeypatch.setattr(eng.ner, "predict", boom)
    r = client.post("/v1/ner", json={"text": EXAMPLE}, headers={"x-request-id": "req-42"})
    assert r.status_code == 500
    assert r.json()["request_id"] == "req-42" and "req-42" in r.json()["error"]["message"]
    monkeypatch.undo()
    r = client.post("/v1/ner", json={"text": EXAMPLE})
    assert r.status_code == 200 and _spans(r.json()) == EXAMPLE_ENTITIES


def test_api_health_ready_and_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    spec = client.get("/openapi.json").json()
    assert "/v1/ner" in spec["paths"]
    assert "text" in str(spec["paths"]["/v1/ner"]["post"]["requestBody"])
    assert client.get("/docs").status_code == 200


def test_settings_reject_inconsistent_limits():
    with pytest.raises(ValueError, match="max-request-chars"):
        Settings(max_text_chars=10, max_request_chars=5).validate()
    with pytest.raises(ValueError, match="overlap"):
        Settings(window=64, overlap=64).validate()
