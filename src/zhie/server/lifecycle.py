"""Graceful shutdown of one server process.

On SIGTERM (or SIGINT) uvicorn stops accepting connections, closes idle keep-alive ones and waits
up to ``timeout_graceful_shutdown`` (= ``ZHIE_DRAIN_S``) for the requests in progress; whatever is
still running after that is cancelled and answered 500 by uvicorn. So the app:

- flips ``/readyz`` to 503 the moment the signal arrives (``Drain.active``);
- lets every accepted request run to its answer while the drain time allows;
- at ``shed_at`` (5 s before the deadline, or half-way for a short one) fails the texts still
  queued for the model with a 503 ``shutting_down`` + ``Retry-After``, so they can be retried on
  another instance; the model calls already running finish in the time left;
- at ``last_call`` (0.5 s before the deadline, or at 90 % of a short one) answers the waiters of a
  model call still running 503 the same way (the call finishes, its results are dropped), so no
  request is left for uvicorn to cancel into a 500.

The signal hook wraps the handler uvicorn installs (``Server.capture_signals``) from inside the
lifespan, so it holds for one process and for each worker under ``--workers N`` alike; uvicorn
restores its own handlers when it exits. Nothing is hooked off the main thread (a TestClient).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable

log = logging.getLogger("zhie.server")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Drain:
    def __init__(self, drain_s: float):
        self.drain_s = drain_s
        self.started: float | None = None  # time.monotonic() when the signal came
        self.shedding = False
        self._handles: list[asyncio.TimerHandle] = []

    @property
    def active(self) -> bool:
        return self.started is not None

    @property
    def shed_at(self) -> float:
        return max(self.drain_s * 0.5, self.drain_s - 5.0)

    @property
    def last_call(self) -> float:
        return max(self.drain_s * 0.9, self.drain_s - 0.5)

    def install(self, loop: asyncio.AbstractEventLoop, shed: Callable[[bool], int]) -> bool:
        """Wrap the process's SIGTERM/SIGINT handlers (main thread only); returns whether it did."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for sig in SIGNALS:
            previous = signal.getsignal(sig)

            def handler(signum, frame, previous=previous):
                self.begin(loop, shed)
                if callable(previous):
                    previous(signum, frame)

            signal.signal(sig, handler)
        return True

    def begin(self, loop: asyncio.AbstractEventLoop, shed: Callable[[bool], int]) -> None:
        """Start draining (from the signal handler, or any thread): ``shed(running)`` is called at
        ``shed_at`` with False and at ``last_call`` with True."""
        if self.started is not None:
            return
        self.started = time.monotonic()  # nothing else here: a signal handler must not log or do I/O

        def do_shed(running: bool) -> None:
            self.shedding = True
            n = shed(running)
            if n:
                log.warning("drain deadline near: %d %s texts answered 503 shutting_down", n, "running" if running else "queued")

        def schedule() -> None:
            log.info("draining: /readyz is 503; requests in progress get up to %gs", self.drain_s)
            self._handles = [loop.call_later(self.shed_at, do_shed, False), loop.call_later(self.last_call, do_shed, True)]

        loop.call_soon_threadsafe(schedule)

    def cancel(self) -> None:
        for h in self._handles:
            h.cancel()


def uvicorn_options(settings) -> dict:
    """The uvicorn settings ``zhie serve`` runs with (also used by the tests' in-process servers)."""
    return dict(
        timeout_graceful_shutdown=settings.drain_s,  # the drain above
        http="zhie.server.protocol:GuardedH11Protocol",  # h11 plus a deadline on the request head
        limit_concurrency=settings.max_connections,  # beyond: 503 too_many_connections (protocol.py)
        backlog=settings.backlog,
        timeout_keep_alive=settings.keep_alive_s,
        server_header=False,  # no "server: uvicorn": no software or version in any response
        log_level=settings.log_level,
    )
