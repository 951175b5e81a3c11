"""The Ray engine: the same batches on Ray Data, ``map_batches`` over a pool of actors that each load
the model once.

The driver cuts the input into the local engine's batches in a streaming pass (only their input
cursors are kept), and each Dataset is a segment of that plan (2,048 batches, the next one cut while
this one runs): one row per batch. Each
actor reads its batch's records itself from the input (which must therefore be at a path every
node sees: local disk for a local Ray, a shared volume on a cluster), runs the model on exactly
those texts and returns the rendered output lines. The driver iterates the results in plan order
(``preserve_order``) and writes them through the same resumable writer as the local engine, so the
output is byte-identical to the local engine's, and ``--resume`` works across engines.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from .job import Batch, JobError, JobSpec, Predictor, batch_errors, batches, render


class _BatchActor:
    """One Ray actor: the model, loaded once; each call answers one planned batch (a one-row dataset batch)."""

    SPEC: JobSpec
    THREADS = 1

    def __init__(self):  # the job rides on the class (see run_ray), not in constructor arguments in the object store
        self.spec = self.SPEC
        self.predictor = Predictor(self.SPEC, self.THREADS)

    def __call__(self, rows: dict) -> dict:
        import numpy as np

        outs, errs = [], []
        for start, end, line0 in zip(rows["start"].tolist(), rows["end"].tolist(), rows["line0"].tolist()):
            recs = []
            for r in self.spec.records(start, line0):
                recs.append(r)
                if r.cursor >= end:
                    break
            b = Batch(recs, [r.text for r in recs if r.text is not None], 0, start, end, line0)
            res = self.predictor.run(b.texts)
            outs.append(render(b, res))
            errs.append(batch_errors(b, res))
        return {**rows, "out": np.array(outs, dtype=object), "errors": np.array(errs, dtype=np.int64)}


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise JobError("--engine ray needs Ray: pip install 'zhie[ray]'") from None
    return ray


SEGMENT_BATCHES = 2048  # batches a Dataset run covers (about 32M characters at the default budget)


def _plan_segments(spec: JobSpec, start: int, line0: int, size: int):
    """The plan, ``size`` batches at a time: for each batch its input cursors, first line, lines, characters."""
    seg: list[dict] = []
    for b in batches(spec.records(start, line0), spec, start, line0):
        seg.append({"start": b.start, "end": b.end, "line0": b.line0, "lines": len(b.records), "chars": b.chars})
        if len(seg) >= size:
            yield seg
            seg = []
    if seg:
        yield seg


def _prefetch(gen, depth: int = 1):
    """Iterate ``gen`` in a thread, ``depth`` items ahead: the next plan segment is cut while Ray works on this one."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(depth)
    end = object()

    def fill():
        try:
            for x in gen:
                q.put(x)
            q.put(end)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)

    threading.Thread(target=fill, daemon=True, name="zhie-batch-plan").start()
    while True:
        x = q.get()
        if x is end:
            return
        if isinstance(x, BaseException):
            raise x
        yield x


def run_ray(spec: JobSpec, start: int, line0: int, actors: int, threads: int, sink, address: str | None = None,
            segment_batches: int = SEGMENT_BATCHES) -> dict:
    """Run ``spec`` from cursor ``start`` on Ray: a local Ray started here, or the cluster at ``address``
    (``auto``: the one this machine belongs to). ``sink`` as in :func:`zhie.batch.local.run_local`.

    The plan is cut ``segment_batches`` at a time, each segment one Dataset run (its own actor pool,
    each actor loading the model once), the next segment planned while this one runs: memory stays
    bounded and the actors start at once, however large the input."""
    ray = _ray()
    spec.input = str(Path(spec.input).resolve())
    started = False
    if not ray.is_initialized():
        kw = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        if address:
            ray.init(address=address, **kw)
        else:
            from .local import cores

            ray.init(num_cpus=max(cores(), actors * threads), **kw)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # results come back in plan order
        ctx.enable_progress_bars = False  # ours is on stderr already
        ctx.print_on_execution_start = False
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"ray\..*")
        actor = type("ZhieBatchActor", (_BatchActor,), {"SPEC": spec, "THREADS": threads})
        for seg in _prefetch(_plan_segments(spec, start, line0, segment_batches)):
            n = len(seg)
            # one batch a block: results stream back (and are committed) batch by batch; a block costs
            # milliseconds against the seconds of model work in a batch
            ds = ray.data.from_items(seg, override_num_blocks=n)
            ds = ds.map_batches(actor, batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(actors, n)), num_cpus=threads,
                                batch_format="numpy", zero_copy_batch=True)
            for row in ds.iter_rows():
                sink(int(row["lines"]), int(row["end"]), int(row["chars"]), str(row["out"]), int(row["errors"]))
    finally:
        if started:
            ray.shutdown()
    return {"actors": actors, "address": address or "local"}
