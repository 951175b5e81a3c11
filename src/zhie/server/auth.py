"""Optional API keys, CORS and the headers every response carries.

Keys come from ``ZHIE_API_KEYS`` (comma-separated) and/or ``ZHIE_API_KEYS_FILE`` (one a line, ``#``
comments). With none set, nothing needs a key. With keys set, every route needs
``Authorization: Bearer KEY`` except the probes (``/healthz``, ``/readyz``), the web page and its
assets, the API documents (``/docs``, ``/openapi.json``) and ``/metrics`` (unless
``ZHIE_METRICS_AUTH=1``). A missing or wrong key is a 401 with ``WWW-Authenticate: Bearer``. Keys are
compared in constant time (``hmac.compare_digest`` against every key, no early exit).
"""

from __future__ import annotations

import hmac
import json
import uuid
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
OPEN_PREFIXES = ("/static/", "/static-offline-docs/")

# on every response: no MIME sniffing, no Referer leaking a text or key-bearing URL elsewhere
COMMON_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]


def load_api_keys(settings) -> list[bytes]:
    """The configured keys (empty: no key needed). Raises ValueError naming the problem."""
    keys = [k.strip() for k in settings.api_keys.split(",") if k.strip()]
    if settings.api_keys_file:
        path = Path(settings.api_keys_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ValueError(f"cannot read the key file {path}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise ValueError(f"the key file {path} is not UTF-8 text") from None
        from_file = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        if not from_file:
            raise ValueError(f"the key file {path} holds no key")
        keys += from_file
    for k in keys:
        if any(c.isspace() for c in k) or not k.isprintable() or not k.isascii():
            raise ValueError("a key must be printable ASCII without spaces")
    return [k.encode("ascii") for k in keys]


def key_matches(given: bytes, keys: list[bytes]) -> bool:
    ok = False
    for k in keys:  # every key is compared: the time taken does not tell which one nearly matched
        ok |= hmac.compare_digest(given, k)
    return ok


def needs_key(path: str, metrics_auth: bool) -> bool:
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return False
    if path == "/metrics":
        return metrics_auth
    return True


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
            return None
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


class SecurityMiddleware:
    """Outermost layer: common headers on every response, and the key check before anything runs
    (a refused request never reaches the body parser or the model)."""

    def __init__(self, app: ASGIApp, keys: list[bytes], metrics_auth: bool = False):
        self.app, self.keys, self.metrics_auth = app, keys, metrics_auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in COMMON_HEADERS if k not in have]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if (self.keys and needs_key(scope.get("path", ""), self.metrics_auth)
                and not key_matches(_bearer(scope) or b"", self.keys)):
            await self._refuse(scope, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        rid = _header(scope, b"x-request-id") or uuid.uuid4().hex
        given = _bearer(scope) is not None
        message = "the API key is not valid" if given else "this server needs an API key: send `Authorization: Bearer KEY`"
        body = json.dumps({"error": {"code": "invalid_api_key" if given else "missing_api_key", "message": message,
                                     "field": "Authorization"}, "request_id": rid}).encode()
        challenge = b'Bearer realm="zhie"' + (b', error="invalid_token"' if given else b"")
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", challenge), (b"x-request-id", rid.encode("latin-1")), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})
