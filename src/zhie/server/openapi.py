"""``/openapi.json`` that says exactly what the server accepts and answers.

FastAPI derives the request bodies from the pydantic models, which cannot say "exactly one of
``text`` / ``texts``" or carry the limits of this server's settings. The bodies are written here
instead, from the same settings the handlers enforce: ``oneOf`` text / texts, ``maxLength`` /
``maxItems`` from the limits, the extraction schema's grammar and depth, and every error status a
route can answer with the error body's schema (and ``Retry-After`` on 503). With API keys set, the
protected operations carry a bearer security requirement and a 401.

Two rules cannot be written in JSON Schema and are given in the descriptions only: the total of
all texts of one request (``ZHIE_MAX_REQUEST_CHARS``, 413 beyond) and the node count of an
extraction schema (``ZHIE_MAX_SCHEMA_NODES``, 413 beyond); neither is reached by ordinary requests.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..tasks.schema import MAX_NAME_CHARS
from .auth import needs_key

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}}

WHY = {
    400: "the body is not JSON, or (/v1/extract) the schema is malformed; `error.field` names the node",
    401: "no API key or a wrong one (`Authorization: Bearer KEY`); see `WWW-Authenticate`",
    408: "the request body did not arrive within ZHIE_BODY_TIMEOUT_S",
    413: "a text, the request, the number of texts or the extraction schema is over its limit; the message names the limit",
    422: "a field is missing, extra or of the wrong type; `error.field` is its path",
    500: "internal error (the model call failed); quote `request_id`",
    503: "overloaded (queue full), timed out waiting, shutting down, models loading or not loaded; retry after `Retry-After`",
}

# what str.strip() removes, spelled out: regex engines (Python's, ECMA's, hypothesis's) differ on \s
SPACES = "".join(f"\\u{c:04x}" for c in range(0x10000) if chr(c).isspace())
CONTROL = "\\u0000-\\u001f\\u007f"
NOT_BLANK = f"[^{SPACES}]"

NAME = {  # a type name in an extraction schema (zhie.tasks.schema._check_name)
    "type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS,
    "pattern": f"^[^{CONTROL}]*[^{SPACES}{CONTROL}][^{CONTROL}]*$",
    "description": f"a type name: not blank, at most {MAX_NAME_CHARS} characters, no control characters",
}


def _children(level: int, depth: int, nodes: int) -> dict:
    """A JSON value describing the nodes at ``level`` (child value of a node one level up). No
    object or list can hold more than ``nodes`` names (the total limit implies it)."""
    if level > depth:  # deeper than allowed: only values that name no node
        empty = {"type": "object", "maxProperties": 0}
        return {"anyOf": [{"type": "null"}, empty, {"type": "array", "items": empty}]}
    obj = {"type": "object", "propertyNames": NAME, "maxProperties": nodes, "additionalProperties": _children(level + 1, depth, nodes)}
    return {"anyOf": [{"type": "null"}, NAME, obj,
                      {"type": "array", "uniqueItems": True, "maxItems": nodes, "items": {"anyOf": [NAME, obj]}}]}


def extraction_schema(depth: int, nodes: int) -> dict:
    obj = {"type": "object", "propertyNames": NAME, "maxProperties": nodes, "additionalProperties": _children(2, depth, nodes)}
    named = {"anyOf": [NAME, {**obj, "minProperties": 1}]}
    return {
        "description": 'What to extract: `{"产品名称": null, "属性词": {"情感词": null}}` (SiameseUIE form), or the '
                       'Taskflow forms `["时间", "选手"]`, `{"竞赛名称": ["主办方", "承办方"]}`. At most '
                       f"{depth} levels (ZHIE_MAX_SCHEMA_DEPTH) and {nodes} type names in all (ZHIE_MAX_SCHEMA_NODES; "
                       "413 beyond); a name appears once per level.",
        "anyOf": [NAME, {**obj, "minProperties": 1},
                  {"type": "array", "minItems": 1, "maxItems": nodes, "uniqueItems": True, "items": {"anyOf": [NAME, obj]},
                   "contains": named}],
        "examples": [{"产品名称": None, "价格": None, "属性词": {"情感词": None}}],
    }


def texts_body(s, extra: dict | None = None, required: tuple = ()) -> dict:
    """``{"text"}`` or ``{"texts"}`` (the other one absent or null), plus ``extra`` properties."""
    per_text = min(s.max_text_chars, s.max_request_chars)
    text = {"type": "string", "maxLength": per_text,
            "description": f"one text; at most {per_text} characters (ZHIE_MAX_TEXT_CHARS)"}
    texts = {"type": "array", "maxItems": s.max_batch_items, "items": {"type": "string", "maxLength": per_text},
             "description": f"several texts, answered in order: at most {s.max_batch_items} (ZHIE_MAX_BATCH_ITEMS), "
                            f"{per_text} characters each and {s.max_request_chars} in all (ZHIE_MAX_REQUEST_CHARS)"}
    extra = extra or {}

    def form(name: str, other: str, schema: dict) -> dict:
        return {"type": "object", "title": f"{name} form", "additionalProperties": False,
                "required": [name, *required], "properties": {name: schema, other: {"type": "null"}, **extra}}

    return {"oneOf": [form("text", "texts", text), form("texts", "text", texts)]}


def _body(schema: dict, example: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}


def request_bodies(s) -> dict[str, dict]:
    threshold = {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, {"type": "null"}],
                 "description": "probability a span's start and end must each pass; default: the model's (0.5)"}
    analyze = {"type": "object", "required": ["text"],
               "properties": {"text": {"type": "string", "minLength": 1, "maxLength": s.analyze_max_chars, "pattern": NOT_BLANK,
                                       "description": f"not blank; at most {s.analyze_max_chars} characters (ZHIE_ANALYZE_MAX_CHARS)"}}}
    example = "华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。"
    return {
        "/v1/ner": _body(texts_body(s), {"text": example}),
        "/v1/sentiment": _body(texts_body(s), {"text": "这家餐厅的菜太好吃了"}),
        "/v1/extract": _body(texts_body(s, {"schema": extraction_schema(s.max_schema_depth, s.max_schema_nodes),
                                            "threshold": threshold}, ("schema",)),
                             {"text": example, "schema": ["人物", "地点", "机构"]}),
        "/analyze": _body(analyze, {"text": "这家餐厅的菜太好吃了"}),
    }


ERRORS = {
    "/v1/ner": (400, 408, 413, 422, 500, 503),
    "/v1/sentiment": (400, 408, 413, 422, 500, 503),
    "/v1/extract": (400, 408, 413, 422, 500, 503),
    "/analyze": (400, 408, 413, 500, 503),  # this drop-in route answers every bad input 400
}


def install_openapi(app: FastAPI, settings, keys: bool) -> None:
    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        bodies = request_bodies(settings)
        for path, ops in spec.get("paths", {}).items():
            for method, op in ops.items():
                if path in bodies and method == "post":
                    op["requestBody"] = bodies[path]
                responses = op.setdefault("responses", {})
                codes = list(ERRORS.get(path, ()))
                if keys and needs_key(path, settings.metrics_auth):
                    codes.append(401)
                    op["security"] = [{"bearer": []}]
                for code in codes:
                    entry = {"description": WHY[code], "content": {"application/json": {"schema": ERROR_REF}}}
                    if code == 503:
                        entry["headers"] = RETRY_AFTER
                    if code == 401:
                        entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
                    responses[str(code)] = entry
        for code in ("422",):  # FastAPI's own validation error shape is never sent: ours is
            for ops in spec["paths"].values():
                for op in ops.values():
                    r = op.get("responses", {}).get(code)
                    if r and "HTTPValidationError" in str(r):
                        op["responses"][code] = {"description": WHY[422], "content": {"application/json": {"schema": ERROR_REF}}}
        ready = spec["paths"].get("/readyz", {}).get("get")
        if ready is not None:
            ready["responses"]["503"] = {
                "description": "not ready: models loading, or draining after SIGTERM",
                "headers": RETRY_AFTER,
                "content": {"application/json": {"schema": {"type": "object", "required": ["status"], "properties": {
                    "status": {"type": "string", "enum": ["loading", "draining"]}}}}}}
        comps = spec.setdefault("components", {})
        schemas = comps.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        if "ErrorResponse" not in schemas:
            from .schemas import ErrorResponse

            js = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(js.pop("$defs", {}))
            schemas["ErrorResponse"] = js
        if keys:
            comps["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer",
                                                   "description": "an API key from ZHIE_API_KEYS / ZHIE_API_KEYS_FILE"}}
        app.openapi_schema = spec
        return spec

    app.openapi = openapi
