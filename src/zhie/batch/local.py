"""The local engine: this process reads and writes, worker processes run the model.

Each worker loads the model once (``threads`` ONNX Runtime threads) and answers whole batches; at
most ``2 x workers`` batches are in flight, so memory stays bounded whatever the input's size, and
results are written strictly in input order. Workers die with the parent (``PR_SET_PDEATHSIG``), so
a killed run leaves nothing behind computing. ``workers=0`` runs the model in this process.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .job import Batch, JobError, JobSpec, Predictor, batch_errors, batches, render

_predictor: Predictor | None = None


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux/glibc: the worker exits when its task pipe closes
        pass


def _init(spec: JobSpec, threads: int) -> None:
    global _predictor
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C stops the parent, which stops us
    _predictor = Predictor(spec, threads)


def _run(texts: list[str]) -> list:
    assert _predictor is not None
    return _predictor.run(texts)


def _done(value) -> Future:
    f: Future = Future()
    f.set_result(value)
    return f


def _emit(sink, b: Batch, results: list) -> None:
    sink(len(b.records), b.end, b.chars, render(b, results), batch_errors(b, results))


def run_local(spec: JobSpec, start: int, line0: int, workers: int, threads: int, sink) -> None:
    """Every batch of ``spec``'s input from cursor ``start`` through the model; ``sink(lines, end, chars,
    text, errors)`` is called for each, in input order, with its rendered output lines."""
    stream = batches(spec.records(start, line0), spec, start, line0)
    if workers == 0:
        p = Predictor(spec, threads)
        for b in stream:
            _emit(sink, b, p.run(b.texts))
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no ONNX Runtime thread pool or tqdm thread forked
    pending: deque[tuple[Batch, Future]] = deque()
    limit = 2 * workers
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(spec, threads)) as pool:
        try:
            for b in stream:
                pending.append((b, pool.submit(_run, b.texts) if b.texts else _done([])))
                while len(pending) >= limit or (pending and pending[0][1].done()):
                    done, fut = pending.popleft()
                    _emit(sink, done, fut.result())
            while pending:
                done, fut = pending.popleft()
                _emit(sink, done, fut.result())
        except BrokenProcessPool:
            raise JobError("a model worker died (out of memory?); what was committed is kept: rerun with --resume") from None
