"""Memory of ``zhie serve --workers N``: weights memory-mapped and shared vs a private copy per worker.

    python benchmarks/workers.py            # writes benchmarks/results/workers.md

For N in 1, 2, 4 it starts the server twice: with the pre-packed model cache (the default: every
worker memory-maps the same weight file) and with ``ZHIE_CACHE_DIR=off`` (each worker loads its own
copy), sends each worker traffic, and reports the sum of PSS over all the server's processes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

from zhie.bench.measure import drive, pss_mb, tree
from zhie.bench.run import Server, free_port, machine

TEXT = "华为技术有限公司创始人任正非在深圳接受采访，北京大学张伟教授也出席了。"


def measure(workers: int, shared: bool, logdir: Path) -> dict:
    port = free_port()
    env = {**os.environ, "ZHIE_LOG_LEVEL": "warning"}
    if not shared:
        env["ZHIE_CACHE_DIR"] = "off"
    srv = Server(f"zhie-w{workers}", [sys.executable, "-m", "zhie.cli", "serve", "--port", str(port), "--workers", str(workers)],
                 env, f"http://127.0.0.1:{port}/readyz", f"http://127.0.0.1:{port}/v1/ner", logdir / f"workers-{workers}-{shared}.log")
    with srv:
        # readyz answered by one worker: wait until every worker has loaded, then reach them all
        drive(srv.url, [{"text": TEXT}], 16, 64 * workers)
        drive(f"http://127.0.0.1:{port}/v1/sentiment", [{"text": TEXT}], 16, 64 * workers)
        procs = len(tree(srv.proc.pid))
        return {"workers": workers, "shared": shared, "pss": pss_mb(srv.proc.pid), "procs": procs, "startup": srv.startup}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    p.add_argument("--out", default="benchmarks/results/workers.md")
    a = p.parse_args()
    logdir = Path(tempfile.mkdtemp(prefix="zhie-workers-"))
    rows = []
    for n in a.workers:
        for shared in (True, False):
            r = measure(n, shared, logdir)
            rows.append(r)
            print(r, file=sys.stderr)
    by = {(r["workers"], r["shared"]): r for r in rows}
    lines = [
        "# Memory of `zhie serve --workers N`",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- Command: `python benchmarks/workers.py{(' ' + ' '.join(sys.argv[1:])) if sys.argv[1:] else ''}`",
        "- The bundled models (NER, sentiment, extraction) loaded in every worker; each worker served NER and sentiment traffic first.",
        "- Memory: sum of PSS over the uvicorn supervisor and its workers (shared pages counted once).",
        "",
        "| workers | shared weights (default) MB | private copies (`ZHIE_CACHE_DIR=off`) MB | saved |",
        "|---:|---:|---:|---:|",
    ]
    for n in a.workers:
        s, c = by[(n, True)]["pss"], by[(n, False)]["pss"]
        lines.append(f"| {n} | {s:.0f} | {c:.0f} | {c - s:.0f} MB ({(c - s) / c:.0%}) |")
    if len(a.workers) > 1:
        n0, n1 = a.workers[0], a.workers[-1]
        per = (by[(n1, True)]["pss"] - by[(n0, True)]["pss"]) / (n1 - n0)
        per_c = (by[(n1, False)]["pss"] - by[(n0, False)]["pss"]) / (n1 - n0)
        lines += ["", f"Each extra worker costs about {per:.0f} MB with shared weights and {per_c:.0f} MB with private copies."]
    Path(a.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
