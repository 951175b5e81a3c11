"""The zhie HTTP service: ``create_app()`` builds it, its lifespan loads the models."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware
from pydantic import BaseModel, ValidationError

from .. import __version__
from ..runtime.batcher import BatchStats, DeadlineExceeded, MicroBatcher, Overloaded
from ..runtime.memory import limit_malloc_arenas
from ..runtime.session import default_threads
from ..models.bundle import bundled_models
from ..tasks.ner import NerOptions, NerTagger
from ..tasks.extract import SchemaExtractor
from ..tasks.schema import Schema, SchemaError, parse_schema
from ..tasks.sentiment import SentimentClassifier
from .schemas import (AnalyzeRequest, AnalyzeResponse, ErrorResponse, ExtractRequest, ExtractSpanOut, NerResponse, SentimentOut,
                      TextsRequest)
from .auth import SecurityMiddleware, load_api_keys
from .lifecycle import Drain
from .metrics import Metrics
from .openapi import install_openapi
from ..tasks.results import extract_json, ner_json, sentiment_json
from .gpu import placement_for
from .settings import Settings
from .web import mount_web

log = logging.getLogger("zhie.server")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers


class UnicodeJSONResponse(JSONResponse):
    """UTF-8 JSON; a string holding a lone surrogate (valid in Python and in JSON as an escape, not in
    UTF-8) is sent with \\u escapes instead of failing, so the client still gets its exact text back."""

    def render(self, content) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _error(request: Request, status: int, code: str, message: str, field: str | None = None, headers=None) -> JSONResponse:
    rid = getattr(request.state, "request_id", None) or uuid.uuid4().hex
    body = {"error": {"code": code, "message": message, "field": field}, "request_id": rid}
    return UnicodeJSONResponse(body, status_code=status, headers={"x-request-id": rid, **(headers or {})})


def _field_path(loc) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) if parts else "body"


def _validation_error(errors: list) -> ApiError:
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
    field = _field_path(first.get("loc", ()))
    msg = first["msg"]
    if first.get("type") == "value_error":
        msg = msg.removeprefix("Value error, ")
    return ApiError(422, "invalid_field", f"{field}: {msg}", field)


CLOSE = {"connection": "close"}  # the rest of a refused body is not read: the connection goes


async def read_body(request: Request, max_bytes: int, timeout_s: float) -> bytes:
    """The body, counted as it streams in: 413 the moment it passes ``max_bytes`` (whatever the
    Content-Length said, or without one: chunked), 408 if it has not all come within ``timeout_s``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "request_too_large", f"request body is {declared} bytes; the limit is {max_bytes}", "body", CLOSE)
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise ApiError(413, "request_too_large", f"request body passed the limit of {max_bytes} bytes", "body", CLOSE)
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, "body_timeout", f"request body not received within {timeout_s:g} s (ZHIE_BODY_TIMEOUT_S)", "body", CLOSE) from None
    return b"".join(chunks)


async def parse_body(request: Request, model: type[BaseModel], max_bytes: int, timeout_s: float = 30.0):
    """Read a JSON body whatever its content type: 400 if it is not JSON, 413 if too big, 408 if too
    slow, 422 naming the field."""
    raw = await read_body(request, max_bytes, timeout_s)
    if not raw.strip():
        raise ApiError(400, "empty_body", "request body is empty; expected a JSON object", "body")
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {e}", "body") from None
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        raise _validation_error(e.errors()) from None


def _json_body(model: type[BaseModel]) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


class ShuttingDown(Exception):
    """The drain deadline is near: queued work is answered 503, to be retried elsewhere."""


class ClientGone(Exception):
    """The client disconnected before its answer: nobody will read a response."""


async def _unless_disconnected(request: Request, work):
    """Await ``work`` unless the client disconnects first; then cancel it (the batcher drops the
    cancelled texts before compute) and raise ClientGone."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while True:
            if (await request.receive())["type"] == "http.disconnect":
                return

    watch = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    raise ClientGone()


class Engine:
    """The loaded models and the limits applied to every request."""

    def __init__(self, settings: Settings):
        self.settings = settings
        threads = settings.threads or default_threads(settings.workers)
        t0 = time.perf_counter()
        self.placement = placement_for(settings)  # cpu / cuda / auto; each task's CPU model loads, then its GPU one
        self.ner = NerTagger.load(
            settings.ner_model, threads=threads, device="cpu",
            options=NerOptions(window=settings.window, overlap=settings.overlap),
        )
        self.placement.attach("ner", self.ner, threads)
        self.ner.predict(["预热"])  # warm-up: first ORT call allocates
        self.sentiment: SentimentClassifier | None = None
        name = settings.sentiment_model
        if name and (name != "sentiment" or "sentiment" in bundled_models()):
            self.sentiment = SentimentClassifier.load(name, threads=threads, device="cpu")
            self.placement.attach("sentiment", self.sentiment, threads)
            self.sentiment.predict(["预热"])
        self.extract: SchemaExtractor | None = None
        name = settings.extract_model
        if name and (name != "extract" or "extract" in bundled_models()):
            self.extract = SchemaExtractor.load(name, threads=threads, device="cpu")
            self.placement.attach("extract", self.extract, threads)
            self.extract.predict(["预热"], parse_schema(["类型"]))
        self.load_seconds = time.perf_counter() - t0
        self.drain = Drain(settings.drain_s)
        self.metrics = Metrics()
        self.placement.register(self.metrics.registry)
        self.batchers: dict[str, MicroBatcher] = {}
        # a JSON-escaped character takes at most 12 bytes (a \\uXXXX surrogate pair)
        self.max_body_bytes = settings.max_request_chars * 12 + 65536

    def _extract_batch(self, items: list[tuple[str, Schema, float | None]]) -> list:
        """(text, schema, threshold) from any number of requests: texts sharing a schema and threshold
        go through together."""
        assert self.extract is not None
        out: list = [None] * len(items)
        groups: dict[tuple[Schema, float | None], list[int]] = {}
        for i, (_, schema, th) in enumerate(items):
            groups.setdefault((schema, th), []).append(i)
        for (schema, th), idx in groups.items():
            for i, r in zip(idx, self.extract.predict([items[i][0] for i in idx], schema, th)):
                out[i] = r
        return out

    @property
    def concurrency(self) -> int:
        """Model calls in flight at once. ORT's intra-op threads speed up one call only so much (1.25x
        from 2 threads on a 2-core box); two calls side by side use both cores fully (2x)."""
        s = self.settings
        if s.model_concurrency:
            return s.model_concurrency
        return 1 if self.placement.device == "cuda" else default_threads(s.workers)

    def start(self) -> None:
        """Start the micro-batchers (needs the running event loop); all tasks share one pool of
        ``concurrency`` model threads."""
        from concurrent.futures import ThreadPoolExecutor

        s = self.settings
        n = self.concurrency
        self._executor = ThreadPoolExecutor(n, thread_name_prefix="zhie-model")
        tasks = {"ner": self.ner.predict}
        if self.sentiment is not None:
            tasks["sentiment"] = self.sentiment.predict
        if self.extract is not None:
            tasks["extract"] = self._extract_batch
        for name, fn in tasks.items():
            b = MicroBatcher(fn, size_of=(lambda p: len(p[0]) * p[1].size) if name == "extract" else len, max_batch_items=max(64, s.max_batch_items), max_batch_chars=s.batch_chars,
                             max_wait_ms=s.batch_wait_ms, max_queue=s.max_queue, timeout_s=s.request_timeout_s,
                             executor=self._executor, on_batch=self._observer(name), concurrency=n)
            b.start()
            self.batchers[name] = b

    def _observer(self, task: str):
        m = self.metrics

        def observe(st: BatchStats) -> None:
            m.inference.labels(task).observe(st.seconds)
            m.batch_items.labels(task).observe(st.items)
            m.batch_chars.labels(task).observe(st.chars)
            m.queue_depth.labels(task).set(st.queue_depth)

        return observe

    def shed(self, running: bool = False) -> int:
        """Near the drain deadline: answer every text still queued (with ``running``: and every one
        in a model call) with 503 shutting_down."""
        return sum(b.fail_waiting(ShuttingDown("server is shutting down"), running) for b in self.batchers.values())

    async def stop(self) -> None:
        self.drain.cancel()
        for b in self.batchers.values():
            await b.stop()
        self._executor.shutdown(wait=False)

    async def run(self, task: str, texts: list[str], request: Request | None = None) -> list:
        """The model's results for ``texts``; with ``request``, a client that disconnects while its
        texts wait gets them dropped from the queue before compute."""
        if self.drain.shedding:
            raise ApiError(503, "shutting_down", "server is shutting down; retry on another instance",
                           headers={"Retry-After": "1", **CLOSE})
        b = self.batchers[task]
        self.metrics.queue_depth.labels(task).set(b.depth + len(texts))
        try:
            if request is None:
                return await b.submit(texts)
            return await _unless_disconnected(request, b.submit(texts))
        except ShuttingDown as e:
            raise ApiError(503, "shutting_down", f"{e}; retry on another instance", headers={"Retry-After": "1", **CLOSE}) from None
        except Overloaded as e:
            self.metrics.rejected.labels(task, "queue_full").inc()
            raise ApiError(503, "overloaded", f"server is busy: {e}; retry shortly", headers={"Retry-After": "1"}) from None
        except DeadlineExceeded as e:
            self.metrics.rejected.labels(task, "timeout").inc()
            raise ApiError(503, "timeout", f"request timed out waiting for the model: {e}", headers={"Retry-After": "2"}) from None

    def check_limits(self, texts: list[str], single: bool | None = None) -> None:
        """413 naming the limit; ``single``: the request gave ``text`` (not a one-item ``texts``)."""
        s = self.settings
        single = len(texts) == 1 if single is None else single
        if len(texts) > s.max_batch_items:
            raise ApiError(413, "too_many_items", f"{len(texts)} texts in one request; the limit is {s.max_batch_items} (ZHIE_MAX_BATCH_ITEMS)", "texts")
        for i, t in enumerate(texts):
            if len(t) > s.max_text_chars:
                raise ApiError(413, "text_too_long", f"text has {len(t)} characters; the limit is {s.max_text_chars} per text (ZHIE_MAX_TEXT_CHARS)", "text" if single else f"texts.{i}")
        total = sum(map(len, texts))
        if total > s.max_request_chars:
            raise ApiError(413, "request_too_large", f"{total} characters in one request; the limit is {s.max_request_chars} (ZHIE_MAX_REQUEST_CHARS)", "texts")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    limit_malloc_arenas()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        eng = await anyio.to_thread.run_sync(Engine, settings)
        eng.start()
        eng.drain.install(asyncio.get_running_loop(), eng.shed)  # SIGTERM: /readyz 503, then drain
        app.state.engine = eng
        log.info("models loaded in %.2fs", eng.load_seconds)
        yield
        app.state.engine = None
        await eng.stop()

    def _served(bundle) -> dict:
        """What /readyz says of a served model: its labels (NER types), format and source, no file paths."""
        cfg, src = bundle.config, bundle.source
        out = {"name": bundle.name, "format": src.get("format", "zhie"), "tokenizer": bundle.tokenizer.kind}
        if cfg.get("task") == "ner":
            out["types"] = sorted({lab.split("-", 1)[1] for lab in cfg["labels"] if "-" in lab and lab[0] in "BIMES"})
        elif "labels" in cfg:
            out["labels"] = list(cfg["labels"])
        if src.get("format", "zhie") != "zhie":
            out["source"] = {k: src[k] for k in ("format", "architecture", "tokenizer_fingerprint", "date") if k in src}
            if src.get("path"):  # the checkpoint folder's name only: responses carry no file paths
                out["source"]["name"] = str(src["path"]).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        return out

    app = FastAPIOffline(  # /docs with Swagger UI served from the package, not a CDN
        title="zhie",
        version=__version__,
        description="Chinese information extraction: named entities with exact code-point offsets.",
        lifespan=lifespan,
        default_response_class=UnicodeJSONResponse,
    )
    app.state.engine = None

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = rid
        t0 = time.perf_counter()
        busy = request.app.state.engine
        if busy is not None:
            busy.metrics.in_progress.inc()
        try:
            response = await call_next(request)
        except Exception:  # noqa: BLE001 - the server must keep serving
            log.exception("internal error in request %s %s (request id %s)", request.method, request.url.path, rid)
            response = _error(request, 500, "internal_error", f"internal error; quote request id {rid} when reporting it")
        finally:
            if busy is not None:
                busy.metrics.in_progress.dec()
        elapsed = time.perf_counter() - t0
        response.headers["x-request-id"] = rid
        response.headers["x-total-time"] = f"{elapsed * 1000:.1f}ms"
        eng = request.app.state.engine
        if eng is not None:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            labels = (path, request.method, str(response.status_code))
            eng.metrics.requests.labels(*labels).inc()
            eng.metrics.latency.labels(*labels).observe(elapsed)
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return _error(request, exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(ClientGone)
    async def client_gone(request: Request, exc: ClientGone):
        return Response(status_code=499)  # nginx's "client closed request": counted, never read

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        err = _validation_error(exc.errors())
        return _error(request, err.status, err.code, err.message, err.field)

    def engine(request: Request) -> Engine:
        eng = request.app.state.engine
        if eng is None:
            raise ApiError(503, "not_ready", "models are still loading", headers={"Retry-After": "1"})
        return eng

    @app.get("/healthz", tags=["ops"])
    async def healthz():
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics(request: Request):
        eng = request.app.state.engine
        if eng is None:
            return Response(b"", status_code=503)
        for task, b in eng.batchers.items():
            eng.metrics.queue_depth.labels(task).set(b.depth)
        body, ctype = eng.metrics.render()
        return Response(body, media_type=ctype)

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request):
        eng = request.app.state.engine
        if eng is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        if eng.drain.active:  # SIGTERM came: take this instance out of the load balancer
            return JSONResponse({"status": "draining"}, status_code=503, headers={"Retry-After": "1"})
        models = {"ner": eng.ner.bundle.name, "sentiment": eng.sentiment.bundle.name if eng.sentiment else None,
                  "extract": eng.extract.bundle.name if eng.extract else None}
        labels = {"sentiment": list(eng.sentiment.labels)} if eng.sentiment else {}
        served = {task: _served(m.bundle) for task, m in (("ner", eng.ner), ("sentiment", eng.sentiment),
                                                           ("extract", eng.extract)) if m is not None}
        return {"status": "ready", "models": models, "labels": labels, "served": served, "load_seconds": round(eng.load_seconds, 3),
                **eng.placement.readyz()}

    @app.post(
        "/v1/ner",
        tags=["ner"],
        response_model=NerResponse | list[NerResponse],
        responses={400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 500: {"model": ErrorResponse}},
        summary="Named entities (PER, LOC, ORG, or an imported model's types) with code-point offsets",
        openapi_extra=_json_body(TextsRequest),
    )
    async def ner(request: Request):
        """`{"text": ...}` returns `{"entities": [...]}`; `{"texts": [...]}` returns a list of those, in order."""
        eng = engine(request)
        body = await parse_body(request, TextsRequest, eng.max_body_bytes, eng.settings.body_timeout_s)
        texts = body.items()
        eng.check_limits(texts, body.text is not None)
        results = await eng.run("ner", texts, request)
        out = [ner_json(ents) for ents in results]
        return out[0] if body.text is not None else out

    def require_sentiment(eng: Engine) -> None:
        if eng.sentiment is None:
            raise ApiError(503, "model_unavailable", "no sentiment model is loaded (set ZHIE_SENTIMENT_MODEL to a model folder)")

    @app.post(
        "/v1/sentiment",
        tags=["sentiment"],
        response_model=SentimentOut | list[SentimentOut],
        responses={400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 500: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
        summary="Sentiment with a calibrated confidence",
        openapi_extra=_json_body(TextsRequest),
    )
    async def sentiment(request: Request):
        """`{"text": ...}` returns `{"label", "confidence", "scores"}`; `{"texts": [...]}` returns a list of those."""
        eng = engine(request)
        require_sentiment(eng)
        body = await parse_body(request, TextsRequest, eng.max_body_bytes, eng.settings.body_timeout_s)
        texts = body.items()
        eng.check_limits(texts, body.text is not None)
        results = await eng.run("sentiment", texts, request)
        out = [sentiment_json(r) for r in results]
        return out[0] if body.text is not None else out

    @app.post(
        "/v1/extract",
        tags=["extract"],
        response_model=dict[str, list[ExtractSpanOut]] | list[dict[str, list[ExtractSpanOut]]],
        responses={400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 500: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
        summary="Schema-driven extraction: entities, relations, opinions (Taskflow result shape)",
        openapi_extra=_json_body(ExtractRequest),
        response_model_exclude_none=True,
    )
    async def extract(request: Request):
        """`{"text", "schema"}` returns `{type: [{"text", "start", "end", "probability", "relations"?}]}`;
        `{"texts", "schema"}` returns a list of those. A bad schema is a 400 naming the node
        (`schema.属性词.情感词`); one deeper or larger than the limits is a 413."""
        eng = engine(request)
        body = await parse_body(request, ExtractRequest, eng.max_body_bytes, eng.settings.body_timeout_s)
        s = eng.settings
        try:
            schema = parse_schema(body.schema_, max_depth=s.max_schema_depth, max_nodes=s.max_schema_nodes)
        except SchemaError as e:
            limit = " (ZHIE_MAX_SCHEMA_DEPTH / ZHIE_MAX_SCHEMA_NODES)" if e.status == 413 else ""
            raise ApiError(e.status, "bad_schema" if e.status == 400 else "schema_too_large", e.message + limit, e.path) from None
        if eng.extract is None:
            raise ApiError(503, "model_unavailable", "no extraction model is loaded (set ZHIE_EXTRACT_MODEL to a model folder)")
        texts = body.items()
        eng.check_limits(texts, body.text is not None)
        results = await eng.run("extract", [(t, schema, body.threshold) for t in texts], request)
        out = [extract_json(r) for r in results]
        return out[0] if body.text is not None else out

    @app.post(
        "/analyze",
        tags=["sentiment"],
        response_model=AnalyzeResponse,
        responses={400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 500: {"model": ErrorResponse}},
        summary="Drop-in route of the StructBERT sentiment services",
        openapi_extra=_json_body(AnalyzeRequest),
    )
    async def analyze(request: Request):
        """`{"text"}` in, `{"label": "Positive"|"Negative", "confidence", "text"}` out. The confidence is the
        probability of the label among positive and negative."""
        eng = engine(request)
        require_sentiment(eng)
        try:
            body = await parse_body(request, AnalyzeRequest, eng.max_body_bytes, eng.settings.body_timeout_s)
        except ApiError as e:
            if e.status == 422:  # this route's contract: every bad input is a 400
                e.status = 400
            raise
        if not body.text or not body.text.strip():
            raise ApiError(400, "missing_text", "`text` is missing or empty", "text")
        limit = eng.settings.analyze_max_chars
        if len(body.text) > limit:
            raise ApiError(413, "text_too_long", f"text has {len(body.text)} characters; the limit is {limit} (ZHIE_ANALYZE_MAX_CHARS)", "text")
        (r,) = await eng.run("sentiment", [body.text], request)
        pos, neg = r.scores.get("positive", 0.0), r.scores.get("negative", 0.0)
        label, p = ("Positive", pos) if pos >= neg else ("Negative", neg)
        return {"label": label, "confidence": round(p / max(pos + neg, 1e-9), 4), "text": body.text}

    mount_web(app)
    keys = load_api_keys(settings)
    install_openapi(app, settings, keys=bool(keys))  # the bodies, limits and errors as enforced
    app.add_middleware(SecurityMiddleware, keys=keys, metrics_auth=settings.metrics_auth)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # off by default: no Access-Control-* header at all
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type", "x-request-id"],
                           expose_headers=["x-request-id", "retry-after"], max_age=600)
    return app
