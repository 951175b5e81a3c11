"""SIGTERM with long requests in flight: how many are answered, how, and the exit status.

    python benchmarks/shutdown.py                          # 40 NER requests of 400 characters
    python benchmarks/shutdown.py --workers 2 --drain-s 5
    PYTHONPATH=/path/to/other/src python benchmarks/shutdown.py   # another checkout (e.g. before the fix)

Starts `zhie serve` (NER only), sends the requests at once (one connection each), sends SIGTERM to
the process group once the server holds them all, and reports the answers by status (an exception
name for a request that got no answer), the time from the signal to the last answer and to the
exit, and the exit status (0 is a clean drain).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from zhie.bench.run import free_port, machine

SENTENCE = "华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=40)
    p.add_argument("--chars", type=int, default=400, help="characters per text")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--drain-s", type=float, default=None, help="ZHIE_DRAIN_S (default: the server's, 30)")
    p.add_argument("--settle-s", type=float, default=2.0, help="wait after sending before SIGTERM")
    a = p.parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ZHIE_LOG_LEVEL": "info", "ZHIE_SENTIMENT_MODEL": "", "ZHIE_EXTRACT_MODEL": ""}
    if a.drain_s is not None:
        env["ZHIE_DRAIN_S"] = str(a.drain_s)
    log = Path(tempfile.mkdtemp(prefix="zhie-shutdown-")) / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "zhie.cli", "serve", "--port", str(port), "--workers", str(a.workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True)
    deadline = time.time() + 120
    while True:
        if proc.poll() is not None or time.time() > deadline:
            print(log.read_text())
            return 2
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    text = (SENTENCE * (a.chars // len(SENTENCE) + 1))[:a.chars]
    results: list = []

    def one() -> None:
        try:
            r = httpx.post(url + "/v1/ner", json={"text": text}, timeout=300)
            results.append((r.status_code, time.time()))
        except httpx.HTTPError as e:
            results.append((type(e).__name__, time.time()))

    threads = [threading.Thread(target=one) for _ in range(a.requests)]
    for t in threads:
        t.start()
    time.sleep(a.settle_s)
    before = len(results)
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGTERM)
    for t in threads:
        t.join(300)
    last = max((ts for _, ts in results), default=t0) - t0
    try:
        rc = proc.wait(120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        rc = "hung (killed)"
    exited = time.time() - t0
    print(f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()}")
    print("command: " + " ".join(["python benchmarks/shutdown.py", *(argv if argv is not None else sys.argv[1:])]))
    print(f"{a.requests} requests of {a.chars} characters, workers {a.workers}, {before} answered before the signal")
    print(f"answers: {dict(collections.Counter(s for s, _ in results))}; last answer {last:.1f} s after SIGTERM; "
          f"exit status {rc} after {exited:.1f} s")
    return 0 if rc == 0 and all(s == 200 for s, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
