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
