"""uvicorn's h11 protocol with a deadline on the request head.

uvicorn times out an idle keep-alive connection (``timeout_keep_alive``) but not one that sends its
request line and headers slowly (slowloris): each byte resets nothing and the connection is held
for ever. Here a connection waiting for a request head gets ``ZHIE_HEADER_TIMEOUT_S`` (default 10 s)
from its first byte (or from the connection, for the first request) to complete it, else it gets a
408 and is closed. A slow *body* is the app's to time out (``ZHIE_BODY_TIMEOUT_S``, see
``app.read_body``). ``zhie serve`` selects this class with ``http="zhie.server.protocol:GuardedH11Protocol"``.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid

from uvicorn.protocols.http import h11_impl
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 31\r\nconnection: close\r\n\r\nrequest head not sent in time\r\n"


def header_timeout_s() -> float:
    try:
        return max(0.01, float(os.environ.get("ZHIE_HEADER_TIMEOUT_S", "10")))
    except ValueError:
        return 10.0


async def too_many_connections(scope, receive, send) -> None:
    """What a request gets beyond ``ZHIE_MAX_CONNECTIONS`` (uvicorn's ``limit_concurrency``): the
    server's JSON error with ``Retry-After``, in place of uvicorn's bare text 503."""
    rid = uuid.uuid4().hex
    body = json.dumps({"error": {"code": "too_many_connections", "field": None,
                                 "message": "the server has too many open connections (ZHIE_MAX_CONNECTIONS); retry shortly"},
                       "request_id": rid}).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"retry-after", b"1"),
        (b"connection", b"close"), (b"x-request-id", rid.encode()), (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# h11_impl looks this name up for each request over the limit; uvicorn has no setting for it
h11_impl.service_unavailable = too_many_connections


class GuardedH11Protocol(H11Protocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._head_timeout = header_timeout_s()
        self._head_timer: asyncio.TimerHandle | None = None

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_head():
            self._arm()  # a partial head: the clock runs from its first byte
        else:
            self._disarm()  # a request is in progress: its body and answer have their own limits

    def on_response_complete(self) -> None:
        self._disarm()  # idle now: uvicorn's keep-alive timeout takes over until the next byte
        super().on_response_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._waiting_for_head() and not self.transport.is_closing():
            self.transport.write(TIMEOUT_408)
            self.transport.close()
