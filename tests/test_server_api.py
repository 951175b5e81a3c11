"""The HTTP API against the real bundled model, in process."""

import pytest
from fastapi.testclient import TestClient

from conftest import EXAMPLE, EXAMPLE_ENTITIES
from zhie.models.bundle import bundled_models
from zhie.server.app import create_app
from zhie.server.settings import Settings


@pytest.fixture(scope="module")
def client():
    app = create_app(Settings(max_text_chars=300, max_request_chars=1000, max_batch_items=4, threads=2, analyze_max_chars=100))
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

    monkeypatch.setattr(eng.batchers["ner"], "fn", boom)
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
    if ready.json()["models"]["sentiment"]:  # the labels a caller can get back, straight from the model
        labels = ready.json()["labels"]["sentiment"]
        assert {"positive", "negative"} <= set(labels)
        assert set(client.post("/v1/sentiment", json={"text": "很好"}).json()["scores"]) == set(labels)
    spec = client.get("/openapi.json").json()
    assert "/v1/ner" in spec["paths"]
    assert "text" in str(spec["paths"]["/v1/ner"]["post"]["requestBody"])
    assert client.get("/docs").status_code == 200


def test_settings_reject_inconsistent_limits():
    with pytest.raises(ValueError, match="max-request-chars"):
        Settings(max_text_chars=10, max_request_chars=5).validate()
    with pytest.raises(ValueError, match="overlap"):
        Settings(window=64, overlap=64).validate()


needs_sentiment = pytest.mark.skipif("sentiment" not in bundled_models(), reason="no bundled sentiment model in this build")
POSITIVE = "这家酒店服务周到，房间干净，早餐丰富，下次还会再来！"
NEGATIVE = "质量太差了，用了两天就坏了，客服也不理人，非常失望。"


@needs_sentiment
def test_api_sentiment_single_and_batch(client):
    r = client.post("/v1/sentiment", json={"text": POSITIVE})
    assert r.status_code == 200
    body = r.json()
    assert body["label"] == "positive" and 0.5 < body["confidence"] <= 1
    assert set(body["scores"]) >= {"positive", "negative"} and sum(body["scores"].values()) == pytest.approx(1, abs=1e-3)
    r = client.post("/v1/sentiment", json={"texts": [NEGATIVE, POSITIVE]})
    assert [x["label"] for x in r.json()] == ["negative", "positive"]


@needs_sentiment
def test_api_sentiment_limits_and_fields(client):
    assert client.post("/v1/sentiment", json={"text": "好" * 301}).status_code == 413
    r = client.post("/v1/sentiment", json={"texts": "x"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "texts"


@needs_sentiment
def test_api_analyze_drop_in_contract(client):
    r = client.post("/analyze", json={"text": NEGATIVE})
    assert r.status_code == 200
    assert r.json()["label"] == "Negative" and r.json()["text"] == NEGATIVE and 0.5 <= r.json()["confidence"] <= 1
    assert client.post("/analyze", json={"text": POSITIVE}).json()["label"] == "Positive"


@needs_sentiment
@pytest.mark.parametrize("payload", [{}, {"text": ""}, {"text": "   "}, {"text": None}, {"text": 3}])
def test_api_analyze_missing_or_empty_text_is_400(client, payload):
    r = client.post("/analyze", json=payload)
    assert r.status_code == 400 and r.json()["error"]["field"] == "text"


@needs_sentiment
def test_api_analyze_over_its_limit_is_413(client):
    r = client.post("/analyze", json={"text": "好" * 101})
    assert r.status_code == 413 and "100" in r.json()["error"]["message"]


def test_api_metrics_count_requests_and_batches(client):
    client.post("/v1/ner", json={"text": EXAMPLE})
    text = client.get("/metrics").text
    assert 'zhie_requests_total{method="POST",route="/v1/ner",status="200"}' in text
    assert 'zhie_batch_items_count{task="ner"}' in text
    assert "process_resident_memory_bytes" in text


def test_api_response_with_a_lone_surrogate_round_trips():
    import json

    from zhie.server.app import UnicodeJSONResponse

    content = {"text": "\ud800张伟", "entities": [{"text": "张\udc00"}]}
    assert json.loads(UnicodeJSONResponse(content).body) == content
    assert "张伟".encode() in UnicodeJSONResponse({"text": "张伟"}).body  # readable UTF-8 when possible


@pytest.mark.parametrize("schema, status, field", [
    ({"属性词": {"": None}}, 400, "schema.属性词."),
    ({"a": {"b": {"c": {"d": None}}}}, 413, "schema.a.b.c.d"),
    (5, 400, "schema"),
    ([], 400, "schema"),
    (["人物", "人物"], 400, "schema.人物"),
])
def test_api_extract_bad_schema_names_the_node(client, schema, status, field):
    r = client.post("/v1/extract", json={"text": "华为发布新手机", "schema": schema})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["code"] in ("bad_schema", "schema_too_large")


def test_api_extract_missing_schema_is_422_and_no_model_is_503(client):
    r = client.post("/v1/extract", json={"text": "华为发布新手机"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "schema"
    ready = client.get("/readyz").json()
    if ready["models"]["extract"] is None:  # no bundled extraction model: a clear 503, not a crash
        r = client.post("/v1/extract", json={"text": "华为发布新手机", "schema": ["产品"]})
        assert r.status_code == 503 and "ZHIE_EXTRACT_MODEL" in r.json()["error"]["message"]


@pytest.mark.parametrize("threshold", [0, 1, 1.5, "high"])
def test_api_extract_threshold_out_of_range_is_422_naming_it(client, threshold):
    r = client.post("/v1/extract", json={"text": "华为发布新手机", "schema": ["产品"], "threshold": threshold})
    assert r.status_code == 422 and r.json()["error"]["field"] == "threshold", r.text


def test_api_extract_threshold_trades_recall_for_precision(client):
    if client.get("/readyz").json()["models"]["extract"] is None:
        pytest.skip("no bundled extraction model")
    body = {"text": "华为Mate60 Pro搭载自研麒麟9000S芯片，支持卫星通话功能，起售价6999元。", "schema": {"产品名称": None, "芯片型号": None, "功能": None, "价格": None}}

    def spans(th):
        r = client.post("/v1/extract", json={**body, **({"threshold": th} if th else {})})
        assert r.status_code == 200, r.text
        return {(t, s["start"], s["end"]) for t, v in r.json().items() for s in v}

    low, default, high = spans(0.05), spans(None), spans(0.95)
    assert len(low) > len(default) >= len(high)  # the caller's threshold reaches the model
