"""ONNX Runtime sessions: graph optimisations on, threads set explicitly, no torch anywhere.

Weights are shared between worker processes. The first load on a machine writes an optimised copy
of the model whose pre-packed INT8 weights sit in an external data file (a per-machine cache, keyed
by model bytes, ONNX Runtime version and CPU). Every later session memory-maps that file, so N
workers hold one copy of the weights in the page cache instead of N private copies.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import onnxruntime as ort

from zhie.runtime.int8 import cpu_flags, has_int8_products, s8_weights_saturate, unsign_weights


def default_threads(workers: int = 1) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


log = logging.getLogger("zhie.runtime")


def default_cache_dir() -> Path | None:
    """``ZHIE_CACHE_DIR`` (``off`` turns the cache off), else ``$XDG_CACHE_HOME/zhie`` or ``~/.cache/zhie``."""
    env = os.environ.get("ZHIE_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zhie"


def _machine_tag() -> str:
    flags = " ".join(sorted(cpu_flags()))
    return f"{platform.machine()}|{platform.processor()}|{flags}|{ort.__version__}|u8={s8_weights_saturate()}"


def cpu_model(path: str | Path) -> str | bytes:
    """What to give ``ort.InferenceSession`` for the CPU: ``path``, or where this CPU's u8 x s8 kernels
    saturate (:mod:`zhie.runtime.int8`), the bytes of the same model with its INT8 weights made unsigned."""
    path = Path(path)
    if not (s8_weights_saturate() and path.is_file()):
        return str(path)
    data = path.read_bytes()
    if not has_int8_products(data):
        return str(path)
    try:
        import onnx
        from onnx.external_data_helper import load_external_data_for_model
    except ImportError:  # onnx is a serving dependency; a trimmed install still serves, with a warning
        log.warning("%s: this CPU has no VNNI and onnx is not installed: INT8 products may saturate", path)
        return str(path)
    model = onnx.load_from_string(data)  # the file is read once; weights kept beside it are read from there
    load_external_data_for_model(model, str(path.parent))
    n = unsign_weights(model)
    if n:
        log.info("%s: %d INT8 weight matrices made unsigned (this CPU has no VNNI; same integers, no saturation)",
                 path, n)
    return model.SerializeToString() if n else str(path)


def _pack(src: str | Path, out: str | Path) -> None:
    """Write ORT's optimised, pre-packed graph of ``src`` to ``out`` (weights beside it, memory-mappable)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3  # the "hardware specific" warning is why the cache is keyed by CPU
    opts.optimized_model_filepath = str(out)
    opts.add_session_config_entry("session.optimized_model_external_initializers_file_name", "model.onnx.data")
    opts.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    opts.add_session_config_entry("session.save_external_prepacked_constant_initializers", "1")
    ort.InferenceSession(cpu_model(src), sess_options=opts, providers=["CPUExecutionProvider"])


def _pack_apart(src: Path, out: Path) -> None:
    """``_pack`` in a child process, so that what packing allocates leaves with it: packed in the serving
    process, three models on a cold cache left it about 90 MB larger than every later start (glibc keeps
    freed heap). In-process, with the freed heap trimmed, where a child cannot be started."""
    code = "import sys; from zhie.runtime.session import _pack; _pack(sys.argv[1], sys.argv[2])"
    here = str(Path(__file__).resolve().parents[2])  # the folder that holds this zhie package
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)}
    try:
        done = subprocess.run([sys.executable, "-c", code, str(src), str(out)], capture_output=True, text=True,
                              timeout=600, env=env)
        if done.returncode == 0 and out.is_file():
            return
        log.info("packing %s in a child process failed (%s); packing here", src, done.stderr.strip()[-300:])
    except (OSError, subprocess.SubprocessError) as e:
        log.info("packing %s in a child process failed (%s); packing here", src, e)
    _pack(src, out)
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def prepacked_model(path: str | Path, cache_dir: Path | None = None) -> Path:
    """The memory-mappable, pre-packed copy of ``path`` in the cache (made on first use), or ``path``
    itself when there is no usable cache. Safe to call from several processes at once."""
    path = Path(path)
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    if cache_dir is None or not path.is_file():
        return path
    h = hashlib.sha256(path.read_bytes())
    h.update(_machine_tag().encode())
    final = cache_dir / "ort" / h.hexdigest()[:24]
    if (final / "model.onnx").is_file():
        return final / "model.onnx"
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        _pack_apart(path, tmp / "model.onnx")
        (tmp / "source.txt").write_text(f"{path.resolve()}\n{ort.__version__}\n", encoding="utf-8")
        try:
            tmp.rename(final)
        except OSError:  # another process got there first
            shutil.rmtree(tmp, ignore_errors=True)
        return final / "model.onnx" if (final / "model.onnx").is_file() else path
    except Exception as e:  # read-only home, full disk, an ORT without the option: serve without sharing
        log.warning("no pre-packed model cache for %s (%s); weights will not be shared between workers", path, e)
        shutil.rmtree(tmp, ignore_errors=True)
        return path


class OnnxSession:
    """One model on one ORT session. ``run`` is thread-safe (ORT sessions are).

    ``cache``: load through :func:`prepacked_model` (CPU only); False loads ``path`` as it is."""

    def __init__(self, path: str | Path, threads: int | None = None, device: str = "cpu", cache: bool = True):
        self.source = Path(path)
        if cache and device == "cpu":
            path = prepacked_model(path)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("device 'cuda' asked for but onnxruntime has no CUDA provider (install onnxruntime-gpu)")
            # the arena grows by what is asked for, not to the next power of two: device memory stays near use
            providers.insert(0, ("CUDAExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"}))
        self.path = Path(path)
        self.threads = opts.intra_op_num_threads
        # a file from the cache was packed from this CPU's form of the model already
        src = cpu_model(path) if device == "cpu" and self.path == self.source else str(path)
        self.session = ort.InferenceSession(src, sess_options=opts, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

        # The activation arena is kept between calls. Shrinking it after each call (ORT's
        # memory.enable_memory_arena_shrinkage) measured 30 % slower on long text and, through heap
        # fragmentation, let memory grow by 130 MB over 60,000 characters instead of 30 MB.
        self.run_options = ort.RunOptions()

    def run(self, **feeds: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {k: feeds[k] for k in self.input_names}, self.run_options)


def run_padded(session: OnnxSession, seqs: list[np.ndarray], *, max_batch_tokens: int, max_batch_size: int,
               max_padding: float = 0.1, features: list[np.ndarray] | None = None,
               feature_input: str = "lex", specials=None, type_split: list[int] | None = None) -> list[np.ndarray]:
    """Run each id sequence framed ``[CLS] … [SEP]`` (``specials``: cls/sep/pad ids, default the char
    vocabulary's ``<s>``/``</s>``/``<pad>``), batched by similar length within a padded-token budget;
    returns, per sequence, its row of the model's first output (padding never reaches a row).

    ``features``: per sequence a (len, D) float array fed as the model input ``feature_input``
    (batch, seq, D), aligned with the ids and zero at the special tokens and the padding.

    ``token_type_ids`` go to a graph that declares them: 0 everywhere, or, with ``type_split``, 0 for
    ``[CLS]`` and the first ``type_split[k]`` ids of sequence ``k`` and 1 from there on (the text of a
    ``[CLS] prompt [SEP] text [SEP]`` pair).

    A sequence joins a batch only while padding stays under ``max_padding`` of the batch's tokens:
    on CPU a batch saves about 20 % over single calls, and padding quickly costs more than that."""
    from ..text.vocab import BOS, EOS, PAD

    cls, sep, pad = (BOS, EOS, PAD) if specials is None else (specials.cls, specials.sep, specials.pad)
    want_types = "token_type_ids" in session.input_names
    out: list[np.ndarray | None] = [None] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    i = 0
    while i < len(order):
        j = i + 1
        real = len(seqs[order[i]]) + 2
        while j < len(order) and j - i < max_batch_size:
            n = len(seqs[order[j]]) + 2
            padded = n * (j - i + 1)
            if padded > max_batch_tokens or padded - (real + n) > max_padding * padded:
                break
            real += n
            j += 1
        idx = order[i:j]
        T = len(seqs[idx[-1]]) + 2
        x = np.full((len(idx), T), pad, dtype=np.int64)
        m = np.zeros((len(idx), T), dtype=np.int64)
        for r, k in enumerate(idx):
            n = len(seqs[k])
            x[r, 0], x[r, n + 1] = cls, sep
            x[r, 1 : n + 1] = seqs[k]
            m[r, : n + 2] = 1
        feeds = {"input_ids": x, "attention_mask": m}
        if want_types:
            tt = np.zeros((len(idx), T), dtype=np.int64)
            if type_split is not None:
                for r, k in enumerate(idx):
                    tt[r, 1 + type_split[k] : len(seqs[k]) + 2] = 1
            feeds["token_type_ids"] = tt
        if features is not None:
            f = np.zeros((len(idx), T, features[idx[0]].shape[1]), dtype=np.float32)
            for r, k in enumerate(idx):
                f[r, 1 : len(seqs[k]) + 1] = features[k]
            feeds[feature_input] = f
        (y,) = session.run(**feeds)[:1]
        for r, k in enumerate(idx):
            out[k] = y[r]
        i = j
    return out  # type: ignore[return-value]
