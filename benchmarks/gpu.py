"""zhie on a GPU against the SiameseUIE GPU service's published figures, over HTTP.

    python benchmarks/gpu.py                      # on a GPU machine: writes benchmarks/results/gpu.md
    python benchmarks/gpu.py --dry-run --out X.md # anywhere (the CPU): a short run of every step
    bash benchmarks/gpu_device_run.sh             # the same on a lent GPU machine, as one command

It starts ``zhie serve --device cuda`` (``--device cpu`` with ``--dry-run`` unless ``--device`` says
otherwise) and measures, for the product example of the SiameseUIE guide (text and schema as in
``evals/extract-handwritten.jsonl``, source "brief"):
- startup: process start to ``/readyz`` 200, every model loaded and warmed;
- latency of ``/v1/extract``: mean / p50 / p95 over 100 sequential requests (after 5 warm-ups);
- requests/s at 3 concurrent clients (the guide's figure), 20 s;
- extractions/s batched: the texts of ``evals/`` with the example's schema, 64 texts a request,
  3 concurrent clients;
- NER and sentiment texts/s at batch (64 texts a request, 3 clients, the same texts);
- peak device memory: NVML (nvidia-ml-py), sampled every 20 ms while the server runs, for the
  server's process where NVML names it (else the device's used memory less what was in use before).

The guide's figures (a T4, SiameseUIE on torch): 720 ms mean, P95 786 ms, 1.78 GB peak device memory,
2.78 req/s at 3 concurrent, 16.2 s to start. The results file names the device, driver, date and
command; a dry run writes the same tables and says that its figures are not GPU figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVALS = REPO / "evals"
GUIDE = {"mean_ms": 720.0, "p95_ms": 786.0, "peak_gb": 1.78, "rps3": 2.78, "startup_s": 16.2}


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def brief() -> tuple[str, dict]:
    line = next(x for x in _lines(EVALS / "extract-handwritten.jsonl") if x.get("source") == "brief")
    return line["text"], line["schema"]


def eval_texts() -> list[str]:
    return [x["text"] for p in sorted(EVALS.glob("extract-*.jsonl")) for x in _lines(p)]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


# -- device memory ------------------------------------------------------------------------------------
class Nvml:
    """NVML (nvidia-ml-py), optional: name, driver, and a sampler of device memory."""

    def __init__(self):
        self.ok = False
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nv, self.h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
            dec = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
            self.name, self.driver = dec(pynvml.nvmlDeviceGetName(self.h)), dec(pynvml.nvmlSystemGetDriverVersion())
            self.total = int(pynvml.nvmlDeviceGetMemoryInfo(self.h).total)
            self.ok = True
        except Exception as e:  # noqa: BLE001 - no pynvml or no driver
            self.why = f"{type(e).__name__}: {e}"

    def used(self, pid: int | None = None) -> tuple[int, int]:
        """(device bytes in use, bytes of process ``pid`` or 0 when NVML does not tell)."""
        dev = int(self.nv.nvmlDeviceGetMemoryInfo(self.h).used)
        mine = 0
        if pid:
            try:
                for p in self.nv.nvmlDeviceGetComputeRunningProcesses(self.h):
                    if p.pid == pid and p.usedGpuMemory:
                        mine = int(p.usedGpuMemory)
            except Exception:  # noqa: BLE001
                pass
        return dev, mine


class Sampler(threading.Thread):
    def __init__(self, nvml: Nvml, pid: int):
        super().__init__(daemon=True)
        self.nvml, self.pid = nvml, pid
        self.baseline = nvml.used()[0]
        self.peak_dev = self.peak_proc = 0
        self.stop_ = threading.Event()

    def run(self):
        while not self.stop_.is_set():
            d, p = self.nvml.used(self.pid)
            self.peak_dev, self.peak_proc = max(self.peak_dev, d), max(self.peak_proc, p)
            time.sleep(0.02)

    def peak(self) -> tuple[int, str]:
        if self.peak_proc:
            return self.peak_proc, "the server process (NVML)"
        return max(0, self.peak_dev - self.baseline), "device used less the baseline before start (NVML)"


# -- the server ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, device: str, port: int, log_path: Path, env: dict | None = None):
        self.port = port
        self.log = open(log_path, "w", encoding="utf-8")
        e = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH", "")) if p),
             "PYTHONUNBUFFERED": "1", **(env or {})}
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "zhie.cli", "serve", "--device", device, "--host", "127.0.0.1",
                                      "--port", str(port)], stdout=self.log, stderr=subprocess.STDOUT, env=e)

    def wait_ready(self, timeout: float) -> float:
        while time.perf_counter() - self.t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"zhie serve exited with {self.proc.returncode}; see {self.log.name}")
            try:
                status, _ = request(self.port, "GET", "/readyz")
                if status == 200:
                    return time.perf_counter() - self.t0
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"zhie serve not ready after {timeout:.0f} s; see {self.log.name}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def request(port: int, method: str, path: str, body: dict | None = None, conn: http.client.HTTPConnection | None = None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    c.request(method, path, body=data, headers={"content-type": "application/json"} if data else {})
    r = c.getresponse()
    raw = r.read()
    if conn is None:
        c.close()
    return r.status, json.loads(raw) if raw else None


def sequential(port: int, path: str, body: dict, n: int, warm: int = 5) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(warm):
        request(port, "POST", path, body, conn)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, _ = request(port, "POST", path, body, conn)
        out.append(time.perf_counter() - t0)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
    conn.close()
    return out


def concurrent(port: int, path: str, bodies: list[dict], clients: int, seconds: float) -> dict:
    """``clients`` threads, each sending the bodies in turn for ``seconds``: requests/s, items/s, p95."""
    lat: list[float] = []
    items = [0]
    errors = [0]
    lock = threading.Lock()
    end = time.perf_counter() + seconds

    def client(k: int):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = k
        while time.perf_counter() < end:
            b = bodies[i % len(bodies)]
            i += clients
            t0 = time.perf_counter()
            status, _ = request(port, "POST", path, b, conn)
            dt_ = time.perf_counter() - t0
            with lock:
                lat.append(dt_)
                items[0] += len(b.get("texts", [None]))
                errors[0] += status != 200
        conn.close()

    t0 = time.perf_counter()
    ths = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.perf_counter() - t0
    return {"requests_s": len(lat) / wall, "items_s": items[0] / wall, "p95_ms": pct(lat, 95) * 1000, "requests": len(lat),
            "errors": errors[0]}


def batches(texts: list[str], size: int, rounds: int) -> list[list[str]]:
    pool = (texts * (size * rounds // max(1, len(texts)) + 1))[: size * rounds]
    return [pool[i : i + size] for i in range(0, len(pool), size)]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def measure(device: str, env: dict, a, text: str, schema: dict, texts: list[str], nvml: Nvml, log_path: Path) -> dict:
    """One server (``zhie serve --device DEVICE`` with ``env``), every step; the figures of the run."""
    dry = a.dry_run
    port = free_port()
    server = Server(device, port, log_path, env)
    sampler = Sampler(nvml, server.proc.pid) if nvml.ok else None
    if sampler:
        sampler.start()
    try:
        startup = server.wait_ready(a.startup_timeout)
        body = {"text": text, "schema": schema}
        status, answer = request(port, "POST", "/v1/extract", body)
        if status != 200:
            raise RuntimeError(f"/v1/extract answered {status}: {answer}")
        seq = sequential(port, "/v1/extract", body, a.n_seq, warm=1 if dry else 5)
        c3 = concurrent(port, "/v1/extract", [body], 3, a.step_s)
        rounds = 2 if dry else 8
        xb = concurrent(port, "/v1/extract", [{"texts": b, "schema": schema} for b in batches(texts, a.batch_n, rounds)], 3, a.step_s)
        nb = concurrent(port, "/v1/ner", [{"texts": b} for b in batches(texts, a.batch_n, rounds)], 3, a.step_s)
        sb = concurrent(port, "/v1/sentiment", [{"texts": b} for b in batches(texts, a.batch_n, rounds)], 3, a.step_s)
        _, after = request(port, "GET", "/readyz")
    finally:
        if sampler:
            sampler.stop_.set()
        server.stop()
    peak, peak_how = sampler.peak() if sampler else (0, f"not measured: NVML unavailable ({nvml.why})")
    det = after.get("device", {})
    return {"startup": startup, "ms": [x * 1000 for x in seq], "c3": c3, "xb": xb, "nb": nb, "sb": sb, "answer": answer,
            "peak": peak, "peak_how": peak_how, "devices": after.get("devices", {}),
            "models": {t: d.get("model") for t, d in det.get("tasks", {}).items()},
            "fallbacks": sum(t.get("fallbacks", 0) for t in det.get("tasks", {}).values()),
            "errors": sum(r["errors"] for r in (c3, xb, nb, sb))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cuda (default), or cpu / auto; --dry-run: cpu unless given")
    p.add_argument("--gpu-model", default="fp16,int8", help="GPU models to measure, one server each (ZHIE_GPU_MODEL): "
                   "fp16, int8 or both (default fp16,int8); ignored on the CPU")
    p.add_argument("--dry-run", action="store_true", help="a few requests of each step, on the CPU: checks the benchmark, measures nothing")
    p.add_argument("--out", default=None, help="results file (default benchmarks/results/gpu.md; dry run: benchmarks/results/gpu-dry-run.md)")
    p.add_argument("--seconds", type=float, default=None, help="length of each concurrent step (default 20; dry run 1)")
    p.add_argument("--requests", type=int, default=None, help="sequential requests (default 100; dry run 5)")
    p.add_argument("--batch", type=int, default=64, help="texts per batched request")
    p.add_argument("--startup-timeout", type=float, default=600)
    a = p.parse_args(argv)
    dry = a.dry_run
    device = a.device or ("cpu" if dry else "cuda")
    a.step_s = a.seconds or (1.0 if dry else 20.0)
    a.n_seq = a.requests or (5 if dry else 100)
    a.batch_n = min(a.batch, 8) if dry else a.batch
    out = Path(a.out or (REPO / "benchmarks" / "results" / ("gpu-dry-run.md" if dry else "gpu.md")))
    command = "python benchmarks/gpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    kinds = [k.strip() for k in a.gpu_model.split(",") if k.strip()] if device != "cpu" else ["-"]
    if any(k not in ("fp16", "int8", "-") for k in kinds):
        p.error(f"--gpu-model: fp16 and/or int8, not {a.gpu_model!r}")

    import onnxruntime as ort

    nvml = Nvml()
    text, schema = brief()
    texts = eval_texts()
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = {}
    import tempfile

    logs = Path(os.environ.get("ZHIE_BENCH_LOGS") or Path(tempfile.gettempdir()) / "zhie-gpu-bench")
    logs.mkdir(parents=True, exist_ok=True)
    for k in kinds:
        log_path = logs / f"{out.stem}.server{'' if k == '-' else '-' + k}.log"
        try:
            runs[k] = measure(device, {} if k == "-" else {"ZHIE_GPU_MODEL": k}, a, text, schema, texts, nvml, log_path)
        except (RuntimeError, OSError) as e:
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:] if log_path.exists() else []
            print(f"benchmarks/gpu.py: {e}", *tail, sep="\n", file=sys.stderr)
            return 2

    gpu_name = f"{nvml.name} ({nvml.total / 2**30:.0f} GiB), driver {nvml.driver}" if nvml.ok else "none (NVML unavailable)"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    name = {"-": f"zhie ({device})", "fp16": "zhie, fp16 GPU models", "int8": "zhie, int8 GPU models (INT8 arithmetic in float32)"}

    def row(label: str, fn, guide: str = "") -> str:
        return f"| {label} | " + " | ".join(fn(r) for r in runs.values()) + f" | {guide} |"

    errors = sum(r["errors"] for r in runs.values())
    lines = [
        "# zhie on a GPU against the SiameseUIE GPU service" + (" — DRY RUN (CPU, not GPU figures)" if dry else ""),
        "",
        *(["**Dry run: a few requests of each step on this machine's CPU, to check the benchmark. These are not GPU "
           "figures and not a measurement to quote.**", ""] if dry else []),
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{command}`",
        f"- GPU: {gpu_name}",
        f"- CPU: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; onnxruntime {ort.__version__} "
        f"({', '.join(ort.get_available_providers())}); zhie commit {git_commit()}",
        *[f"- Server ({name[k]}): `{'' if k == '-' else 'ZHIE_GPU_MODEL=' + k + ' '}zhie serve --device {device}` (defaults "
          f"otherwise); tasks on: {json.dumps(r['devices'])}; models: {json.dumps(r['models'], ensure_ascii=False)}; "
          f"GPU fallbacks during the run: {r['fallbacks']}; non-200 answers: {r['errors']}" for k, r in runs.items()],
        f"- Example: the guide's product text ({len(text)} characters) and schema `{json.dumps(schema, ensure_ascii=False)}`",
        f"- Batched: the {len(texts)} texts of `evals/` ({sum(map(len, texts)) / len(texts):.0f} characters on average), "
        f"{a.batch_n} a request, 3 concurrent clients, {a.step_s:g} s a step",
        "",
        "| | " + " | ".join(name[k] for k in runs) + " | SiameseUIE guide (T4) |",
        "| --- | " + " | ".join("---" for _ in runs) + " | --- |",
        row(f"mean latency, {a.n_seq} sequential requests", lambda r: f"{statistics.mean(r['ms']):.1f} ms", f"{GUIDE['mean_ms']:.0f} ms"),
        row("p50", lambda r: f"{pct(r['ms'], 50):.1f} ms"),
        row("p95", lambda r: f"{pct(r['ms'], 95):.1f} ms", f"{GUIDE['p95_ms']:.0f} ms"),
        row("peak device memory", lambda r: f"{r['peak'] / 1e9:.2f} GB" if r["peak"] else "not measured", f"{GUIDE['peak_gb']} GB"),
        row("requests/s at 3 concurrent", lambda r: f"{r['c3']['requests_s']:.1f} (p95 {r['c3']['p95_ms']:.1f} ms)", str(GUIDE["rps3"])),
        row("startup (to /readyz 200, all three models)", lambda r: f"{r['startup']:.1f} s", f"{GUIDE['startup_s']} s"),
        row("extractions/s batched (example schema)", lambda r: f"{r['xb']['items_s']:.0f} texts/s (p95 {r['xb']['p95_ms']:.0f} ms a request)"),
        row("NER at batch", lambda r: f"{r['nb']['items_s']:.0f} texts/s"),
        row("sentiment at batch", lambda r: f"{r['sb']['items_s']:.0f} texts/s"),
        "",
        *[f"Peak device memory ({name[k]}): {r['peak_how']}." for k, r in runs.items()],
        "",
        *[f"The example's answer ({name[k]}): `{json.dumps(r['answer'], ensure_ascii=False)}`" for k, r in runs.items()],
        "",
    ]
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    if errors:
        print(f"{errors} requests were not answered with 200; see the server logs in {logs}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
