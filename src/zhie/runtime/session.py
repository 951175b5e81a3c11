"""ONNX Runtime sessions: graph optimisations on, threads set explicitly, no torch anywhere."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort


def default_threads(workers: int = 1) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


class OnnxSession:
    """One model on one ORT session. ``run`` is thread-safe (ORT sessions are)."""

    def __init__(self, path: str | Path, threads: int | None = None, device: str = "cpu"):
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
            providers.insert(0, "CUDAExecutionProvider")
        self.path = Path(path)
        self.threads = opts.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, **feeds: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {k: feeds[k] for k in self.input_names})


def run_padded(session: OnnxSession, seqs: list[np.ndarray], *, max_batch_tokens: int, max_batch_size: int) -> list[np.ndarray]:
    """Run each id sequence wrapped in ``<s> … </s>``, batched by similar length within a padded-token
    budget; returns, per sequence, its row of the model's first output (padding never reaches a row)."""
    from ..text.vocab import BOS, EOS, PAD

    out: list[np.ndarray | None] = [None] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and j - i < max_batch_size and (len(seqs[order[j]]) + 2) * (j - i + 1) <= max_batch_tokens:
            j += 1
        idx = order[i:j]
        T = len(seqs[idx[-1]]) + 2
        x = np.full((len(idx), T), PAD, dtype=np.int64)
        m = np.zeros((len(idx), T), dtype=np.int64)
        for r, k in enumerate(idx):
            n = len(seqs[k])
            x[r, 0], x[r, n + 1] = BOS, EOS
            x[r, 1 : n + 1] = seqs[k]
            m[r, : n + 2] = 1
        (y,) = session.run(input_ids=x, attention_mask=m)[:1]
        for r, k in enumerate(idx):
            out[k] = y[r]
        i = j
    return out  # type: ignore[return-value]
