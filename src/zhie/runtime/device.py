"""Where each task's model runs: the CPU (INT8) or a CUDA GPU (fp16), with a fallback to the CPU.

``--device`` / ``ZHIE_DEVICE``:
- ``cpu`` (default): the INT8 models on ONNX Runtime's CPU provider.
- ``cuda``: each task's GPU model on the CUDA provider, fed through I/O binding: ``model.fp16.onnx``, or with
  ``ZHIE_GPU_MODEL=int8`` ``model.int8x.onnx`` (the INT8 arithmetic in float32 ops), see :mod:`zhie.models.fp16`. Without a usable GPU runtime (``onnxruntime-gpu`` not installed, no
  visible device, CUDA libraries that do not load) the server refuses to start, naming what is missing.
- ``auto``: ``cuda`` when that check passes, else ``cpu``; the choice and its reason are logged.

On the GPU each task also keeps its CPU INT8 model, loaded at start. A GPU model call that raises or
runs past ``ZHIE_GPU_DEADLINE_S`` counts as a failure; the call is then answered by the CPU model, so
no request is lost. ``ZHIE_GPU_FAILURES`` failures in a row (default 3) move the task to the CPU; after
``ZHIE_GPU_COOLDOWN_S`` the next call probes the GPU again and, when that call succeeds, the task is
back on the GPU. Each switch is logged and shows in ``/readyz`` and ``/metrics``.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .session import OnnxSession

log = logging.getLogger("zhie.device")

DEVICES = ("auto", "cpu", "cuda")
CUDA_EP = "CUDAExecutionProvider"
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30)
GPU_RUNTIME = "onnxruntime-gpu==1.31.1"  # the gpu extra's pin, named in the messages
_INSTALL = (f"install the GPU runtime in place of the CPU one (they provide the same module): "
            f"pip uninstall -y onnxruntime onnxruntime-gpu && pip install '{GPU_RUNTIME}' (docs/gpu.md)")


class DeviceUnavailable(RuntimeError):
    """``--device cuda`` where there is no usable GPU; the message names what is missing."""


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _visible_devices() -> tuple[int | None, str]:
    """(number of CUDA devices this process may use, or None when it cannot be told; how it was told)."""
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None and cvd.strip() in ("", "-1", "none", "NoDevFiles"):
        return 0, f"CUDA_VISIBLE_DEVICES={cvd!r} hides every device"
    try:
        import pynvml  # nvidia-ml-py, in the gpu extra

        pynvml.nvmlInit()
        try:
            n = pynvml.nvmlDeviceGetCount()
        finally:
            pynvml.nvmlShutdown()
        if cvd:
            n = min(n, len([x for x in cvd.split(",") if x.strip()]))
        return n, "NVML"
    except ImportError:
        pass
    except Exception as e:  # noqa: BLE001 - NVML present but no driver: pynvml.NVMLError_*
        return 0, f"NVML found no NVIDIA driver ({e})"
    nodes = glob.glob("/dev/nvidia[0-9]*") + glob.glob("/proc/driver/nvidia/gpus/*")
    if nodes:
        return None, "device nodes present"
    return 0, "no NVIDIA device in /dev or /proc/driver/nvidia (no GPU, or the driver is not loaded)"


def cuda_problem() -> str | None:
    """None when ONNX Runtime can run on a CUDA device here, else what is missing (for the user)."""
    providers = ort.get_available_providers()
    if CUDA_EP not in providers:
        gpu, cpu = _installed("onnxruntime-gpu"), _installed("onnxruntime")
        if gpu and cpu:
            return (f"onnxruntime-gpu {gpu} and onnxruntime {cpu} are both installed and the CPU one's files won: "
                    f"its providers are {providers}; {_INSTALL}")
        if gpu:
            return f"onnxruntime-gpu {gpu} is installed but offers no CUDA provider (providers: {providers})"
        return f"onnxruntime-gpu is not installed (onnxruntime {ort.__version__} has only {providers}); {_INSTALL}"
    n, how = _visible_devices()
    if n == 0:
        return f"no visible CUDA device: {how}"
    if hasattr(ort, "preload_dlls"):  # CUDA and cuDNN from the nvidia-* wheels, where they are installed so
        try:
            ort.preload_dlls()
        except Exception as e:  # noqa: BLE001 - system libraries may still do
            log.info("onnxruntime.preload_dlls: %s", e)
    return None


def resolve_device(requested: str) -> tuple[str, str]:
    """(``cpu`` or ``cuda``, why). ``cuda`` without a GPU raises :class:`DeviceUnavailable`."""
    if requested not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {requested!r}")
    if requested == "cpu":
        return "cpu", "asked for"
    problem = cuda_problem()
    if requested == "cuda":
        if problem:
            raise DeviceUnavailable(f"--device cuda: {problem}")
        return "cuda", "asked for"
    if problem:
        return "cpu", f"auto: {problem}"
    return "cuda", "auto: onnxruntime has the CUDA provider and a device is visible"


@dataclass
class GpuPolicy:
    failures: int = 3  # GPU failures in a row that move a task to the CPU
    deadline_s: float = 10.0  # a GPU model call running longer is stopped and counts as a failure
    cooldown_s: float = 30.0  # on the CPU this long before the GPU is probed again


def _terminate(ro: ort.RunOptions) -> None:
    ro.terminate = True


class DeviceSession:
    """One task's model call on its device, with the CPU model behind a GPU one. Duck-types
    :class:`OnnxSession` for the tasks (``run(**feeds)``, ``input_names``, ``output_names``).

    ``primary``: the GPU session (None: CPU only, calls are only timed); ``primary_device`` names it
    (``cuda``; a test may put a CPU session there that fails on purpose). ``io_binding``: feed the primary
    through ORT's I/O binding, outputs allocated on ``primary_device``."""

    def __init__(self, task: str, cpu: OnnxSession, primary: OnnxSession | None = None, *, primary_device: str = "cuda",
                 policy: GpuPolicy | None = None, io_binding: bool = True, observer: "Placement | None" = None):
        self.task, self.cpu, self.primary = task, cpu, primary
        self.primary_device = primary_device
        self.policy = policy or GpuPolicy()
        self.io_binding = io_binding
        self.observer = observer
        self.input_names, self.output_names = (primary or cpu).input_names, (primary or cpu).output_names
        self._lock = threading.Lock()
        self.in_a_row = 0  # GPU failures in a row
        self.failures = 0  # all GPU failures
        self.fallbacks = 0  # switches to the CPU
        self.on_cpu_since: float | None = None  # time.time() of the last switch, while on the CPU
        self._probe_at = 0.0  # time.monotonic() after which the GPU is tried again
        self._probing = False
        self.last_error: str | None = None

    # -- state -----------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """Where the task's calls go now."""
        return "cpu" if self.primary is None or self.on_cpu_since is not None else self.primary_device

    @property
    def model(self) -> str:
        return (self.primary if self.device != "cpu" else self.cpu).source.name

    def describe(self) -> dict:
        d: dict[str, Any] = {"device": self.device, "model": self.model}
        if self.primary is not None:
            d.update(gpu_model=self.primary.source.name, cpu_model=self.cpu.source.name, failures_in_a_row=self.in_a_row,
                     failures=self.failures, fallbacks=self.fallbacks, last_error=self.last_error,
                     on_cpu_since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.on_cpu_since)) if self.on_cpu_since else None,
                     next_probe_in_s=round(max(0.0, self._probe_at - time.monotonic()), 1) if self.on_cpu_since else None)
        return d

    def _take_gpu(self) -> tuple[bool, bool]:
        """(use the GPU for this call, it is a probe)."""
        if self.primary is None:
            return False, False
        with self._lock:
            if self.on_cpu_since is None:
                return True, False
            if not self._probing and time.monotonic() >= self._probe_at:
                self._probing = True
                return True, True
        return False, False

    def _ok(self, probe: bool) -> None:
        with self._lock:
            self.in_a_row = 0
            if probe:
                self._probing = False
                self.on_cpu_since = None
                log.warning("%s: the %s model answered the probe; the task is back on %s", self.task, self.primary_device, self.primary_device)
                if self.observer:
                    self.observer.switched(self.task, self.primary_device)

    def _failed(self, probe: bool, reason: str, error: str) -> None:
        with self._lock:
            self.failures += 1
            self.in_a_row += 1
            self.last_error = f"{reason}: {error}"[:300]
            if self.observer:
                self.observer.failed(self.task, reason)
            if probe:
                self._probing = False
                self._probe_at = time.monotonic() + self.policy.cooldown_s
                log.warning("%s: the %s probe failed (%s); staying on the CPU for another %.0f s", self.task,
                            self.primary_device, self.last_error, self.policy.cooldown_s)
            elif self.on_cpu_since is None and self.in_a_row >= self.policy.failures:
                self.on_cpu_since = time.time()
                self.fallbacks += 1
                self._probe_at = time.monotonic() + self.policy.cooldown_s
                log.error("%s: %d %s model calls failed in a row (last: %s); the task moves to the CPU model %s, "
                          "the %s is probed again in %.0f s", self.task, self.in_a_row, self.primary_device, self.last_error,
                          self.cpu.source.name, self.primary_device, self.policy.cooldown_s)
                if self.observer:
                    self.observer.switched(self.task, "cpu", fallback=True)
            else:
                log.warning("%s: %s model call failed (%s), answered on the CPU (%d in a row)", self.task,
                            self.primary_device, self.last_error, self.in_a_row)

    # -- calls -------------------------------------------------------------------------------
    def _run_primary(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        s = self.primary
        assert s is not None
        ro = ort.RunOptions()
        timer = threading.Timer(self.policy.deadline_s, _terminate, (ro,))
        timer.daemon = True
        timer.start()
        try:
            if not self.io_binding:
                return s.session.run(s.output_names, {k: feeds[k] for k in s.input_names}, ro)
            b = s.session.io_binding()
            for k in s.input_names:
                b.bind_cpu_input(k, np.ascontiguousarray(feeds[k]))
            for o in s.output_names:
                b.bind_output(o, "cuda" if self.primary_device == "cuda" else "cpu")
            s.session.run_with_iobinding(b, ro)
            return b.copy_outputs_to_cpu()
        finally:
            timer.cancel()

    def _timed(self, device: str, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        if self.observer:
            self.observer.observe(self.task, device, time.perf_counter() - t0)
        return out

    def run(self, **feeds: np.ndarray) -> list[np.ndarray]:
        gpu, probe = self._take_gpu()
        if not gpu:
            return self._timed("cpu", lambda: self.cpu.run(**feeds))
        t0 = time.perf_counter()
        try:
            out = self._timed(self.primary_device, self._run_primary, feeds)
        except Exception as e:  # noqa: BLE001 - any GPU failure: the CPU answers
            elapsed = time.perf_counter() - t0
            reason = "deadline" if elapsed >= self.policy.deadline_s else "error"
            try:
                out = self._timed("cpu", lambda: self.cpu.run(**feeds))
            except Exception:
                # the CPU model fails on it too: the input, not the GPU, is at fault
                with self._lock:
                    if probe:
                        self._probing = False
                raise
            self._failed(probe, reason, f"{type(e).__name__}: {e}")
            return out
        if time.perf_counter() - t0 > self.policy.deadline_s:  # finished, but late: its answer still counts
            self._failed(probe, "deadline", f"took {time.perf_counter() - t0:.2f} s, deadline {self.policy.deadline_s} s")
        else:
            self._ok(probe)
        return out


# -- device memory (NVML, optional) ----------------------------------------------------------------
class GpuMemory:
    """Device memory through NVML (``nvidia-ml-py``): in use on the device and by this process, and the
    peak of what was seen. ``available`` is False without pynvml or a driver."""

    def __init__(self, index: int = 0):
        self.available = False
        self.peak_process = 0
        self.peak_device = 0
        self.name = self.driver = None
        self._last = 0.0
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._h = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(self._h)
            drv = pynvml.nvmlSystemGetDriverVersion()
            self.name = name.decode() if isinstance(name, bytes) else name
            self.driver = drv.decode() if isinstance(drv, bytes) else drv
            self.available = True
        except Exception:  # noqa: BLE001 - no pynvml, no driver: no device memory figures
            pass

    def sample(self, min_interval_s: float = 0.0) -> tuple[int, int] | None:
        """(bytes used on the device, bytes used by this process, 0 when NVML cannot tell); updates the peaks."""
        if not self.available:
            return None
        now = time.monotonic()
        if min_interval_s and now - self._last < min_interval_s:
            return None
        self._last = now
        nv = self._nvml
        used = int(nv.nvmlDeviceGetMemoryInfo(self._h).used)
        mine = 0
        try:
            for p in nv.nvmlDeviceGetComputeRunningProcesses(self._h):
                if p.pid == os.getpid() and p.usedGpuMemory:
                    mine = int(p.usedGpuMemory)
        except Exception:  # noqa: BLE001 - not supported in some containers
            pass
        self.peak_device = max(self.peak_device, used)
        self.peak_process = max(self.peak_process, mine)
        return used, mine


# -- the engine's placement ----------------------------------------------------------------------
class Placement:
    """The device of a server's tasks: resolves ``settings.device``, puts each task's model on it,
    keeps the metrics (``register`` adds them to a Prometheus registry)."""

    def __init__(self, requested: str = "cpu", policy: GpuPolicy | None = None, batch_tokens: int = 0,
                 gpu_model=None):
        self.requested = requested
        self._gpu_model = gpu_model  # bundle -> (path of its GPU model, None or why it is not the fp16 one)
        self.device, self.reason = resolve_device(requested)
        if requested == "auto":
            log.info("device auto → %s (%s)", self.device, self.reason.removeprefix("auto: "))
        self.policy = policy or GpuPolicy()
        self.batch_tokens = batch_tokens
        self.sessions: dict[str, DeviceSession] = {}
        self.memory = GpuMemory() if self.device == "cuda" else None
        from prometheus_client import Counter, Gauge, Histogram

        self.inference = Histogram("zhie_device_inference_seconds", "model call time per task and device",
                                   ["task", "device"], buckets=BUCKETS, registry=None)
        self.fallback_total = Counter("zhie_gpu_fallbacks_total", "times a task moved from the GPU to the CPU model", ["task"], registry=None)
        self.failure_total = Counter("zhie_gpu_failures_total", "GPU model calls that failed or overran their deadline (answered on the CPU)",
                                     ["task", "reason"], registry=None)
        self.on_device = Gauge("zhie_task_device", "1 for the device a task's calls go to now", ["task", "device"], registry=None)

    # observer callbacks of the DeviceSessions
    def observe(self, task: str, device: str, seconds: float) -> None:
        self.inference.labels(task, device).observe(seconds)
        if device == "cuda" and self.memory is not None:
            self.memory.sample(min_interval_s=0.5)

    def failed(self, task: str, reason: str) -> None:
        self.failure_total.labels(task, reason).inc()

    def switched(self, task: str, device: str, fallback: bool = False) -> None:
        if fallback:
            self.fallback_total.labels(task).inc()
        for d in ("cpu", "cuda"):
            self.on_device.labels(task, d).set(1 if d == device else 0)

    def gpu_model_path(self, bundle) -> Path:
        """The bundle's GPU model as ``gpu_model`` finds it (the server's: its fp16 model, see
        :func:`zhie.models.fp16.fp16_model_for`), else its INT8 model with a warning."""
        path, why = self._gpu_model(bundle) if self._gpu_model else (bundle.onnx_path, "no fp16 model given")
        if why:
            log.warning("%s: %s; the INT8 model runs on CUDA instead (slower, parts of it on the CPU)", bundle.name, why)
        return path

    def _cuda_session(self, task: str, bundle, threads: int | None) -> OnnxSession:
        path = self.gpu_model_path(bundle)
        try:
            s = OnnxSession(path, threads=threads, device="cuda", cache=False)
        except Exception as e:  # noqa: BLE001 - out of device memory, a model the CUDA provider rejects
            raise DeviceUnavailable(f"the CUDA session for {task} ({path}) failed: {e}") from None
        used = s.session.get_providers()
        if used[:1] != [CUDA_EP]:  # ORT falls back to the CPU quietly when the CUDA provider does not load
            raise DeviceUnavailable(f"ONNX Runtime could not start its CUDA provider for {task} (providers {used}): the CUDA 13 "
                                    "and cuDNN 9 libraries it needs did not load (pip install 'onnxruntime-gpu[cuda,cudnn]', "
                                    "docs/gpu.md; ONNX Runtime's log above names the missing library)")
        return s

    def attach(self, task: str, model, threads: int | None = None, primary: OnnxSession | None = None,
               primary_device: str | None = None) -> DeviceSession:
        """Wrap ``model.session`` (the CPU INT8 session a task loaded) in a :class:`DeviceSession`; on CUDA
        load the task's GPU model beside it. ``primary`` puts a given session there instead (tests)."""
        cpu = model.session.cpu if isinstance(model.session, DeviceSession) else model.session
        if primary is None and self.device == "cuda":
            try:
                primary = self._cuda_session(task, model.bundle, threads)
            except DeviceUnavailable as e:
                if self.requested != "auto":
                    raise DeviceUnavailable(f"--device {self.requested}: {e}") from None
                self.device, self.reason = "cpu", f"auto: {e}"
                log.warning("device auto → cpu: %s", e)
        if primary is not None and primary_device is None:
            if self.batch_tokens and hasattr(model, "options") and hasattr(model.options, "max_batch_tokens"):
                model.options.max_batch_tokens = self.batch_tokens
        ds = DeviceSession(task, cpu, primary, primary_device=primary_device or "cuda", policy=self.policy, observer=self)
        model.session = ds
        self.sessions[task] = ds
        self.switched(task, ds.device)
        log.info("%s on %s (%s)", task, ds.device, ds.model)
        return ds

    def describe(self) -> dict:
        d: dict[str, Any] = {"requested": self.requested, "device": self.device, "reason": self.reason,
                             "tasks": {t: s.describe() for t, s in self.sessions.items()}}
        if self.memory is not None and self.memory.available:
            self.memory.sample()
            d["gpu"] = {"name": self.memory.name, "driver": self.memory.driver,
                        "memory_peak_bytes": self.memory.peak_process or self.memory.peak_device}
        return d

    def readyz(self) -> dict:
        """``/readyz``'s part: ``devices`` (task → where its calls go now) and the details."""
        return {"devices": {t: s.device for t, s in self.sessions.items()}, "device": self.describe()}

    def register(self, registry) -> None:
        for m in (self.inference, self.fallback_total, self.failure_total, self.on_device):
            registry.register(m)
        if self.memory is not None and self.memory.available:
            registry.register(_MemoryCollector(self.memory))


class _MemoryCollector:
    def __init__(self, mem: GpuMemory):
        self.mem = mem

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        s = self.mem.sample()
        used = GaugeMetricFamily("zhie_gpu_memory_used_bytes", "GPU memory in use (NVML)", labels=["scope"])
        peak = GaugeMetricFamily("zhie_gpu_memory_peak_bytes", "peak GPU memory seen (NVML)", labels=["scope"])
        if s is not None:
            used.add_metric(["device"], s[0])
            used.add_metric(["process"], s[1])
        peak.add_metric(["device"], self.mem.peak_device)
        peak.add_metric(["process"], self.mem.peak_process)
        yield used
        yield peak
