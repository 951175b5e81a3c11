"""Server settings: every field is also an environment variable ``ZHIE_<FIELD>``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int = 0  # ORT intra-op threads per worker; 0: cores // workers
    device: str = "cpu"  # cpu | cuda | auto (cuda when the GPU runtime sees a device, else cpu): runtime/device.py
    gpu_failures: int = 3  # GPU model calls failing (or overrunning gpu_deadline_s) in a row that move a task to the CPU
    gpu_deadline_s: float = 10.0  # a GPU model call running longer is stopped and answered on the CPU
    gpu_cooldown_s: float = 30.0  # a task fallen back to the CPU probes the GPU again after this long
    gpu_batch_tokens: int = 16384  # padded tokens per model call on the GPU with fp16 models (the CPU keeps each task's own)
    gpu_model: str = "fp16"  # fp16 (the float model's answers) | int8 (the CPU INT8 model's answers, in float32 ops): docs/gpu.md
    ner_model: str = "ner"
    sentiment_model: str = "sentiment"  # "" turns sentiment off
    analyze_max_chars: int = 512  # the drop-in /analyze route's own limit
    extract_model: str = "extract"  # schema extraction: bundled name or folder; "" turns it off
    max_schema_depth: int = 3  # levels of nesting in an extraction schema
    max_schema_nodes: int = 64  # type names in one extraction schema
    window: int = 128
    overlap: int = 32
    max_text_chars: int = 1_000_000  # per text
    max_request_chars: int = 2_000_000  # all texts of one request together
    max_batch_items: int = 256  # texts per request
    batch_chars: int = 16384  # characters per model call when concurrent requests are grouped
    batch_wait_ms: float = 0.0  # wait on purpose for more requests before a model call (0: never)
    model_concurrency: int = 0  # model calls in flight at once per process; 0: cores // workers (1 on cuda)
    max_queue: int = 2048  # texts waiting for a model call; beyond: 503 + Retry-After
    request_timeout_s: float = 120.0  # a request waiting longer gets 503
    drain_s: float = 30.0  # on SIGTERM: time to answer the requests already accepted, then exit
    body_timeout_s: float = 30.0  # a request body not fully received within this gets 408
    header_timeout_s: float = 10.0  # a connection that has not sent a full request head within this is closed
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_connections: int = 1024  # open connections + requests per process; beyond: 503 (uvicorn's limit_concurrency)
    backlog: int = 2048  # connections the kernel queues before the server accepts them
    api_keys: str = field(default="", repr=False)  # comma-separated; "" (and no api_keys_file): no key needed
    api_keys_file: str = ""  # one key a line (# comments); read at start
    metrics_auth: bool = False  # /metrics needs a key too (when keys are set)
    cors_origins: str = ""  # comma-separated origins allowed cross-origin; "" (default): no CORS headers at all
    log_level: str = "info"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        values: dict = {}
        for f in fields(cls):
            env = os.environ.get(f"ZHIE_{f.name.upper()}")
            if env is not None:
                kind = type(f.default)
                try:
                    values[f.name] = _parse_bool(env) if kind is bool else kind(env)
                except ValueError:
                    raise ValueError(f"ZHIE_{f.name.upper()}={env!r}: expected {kind.__name__}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        s = cls(**values)
        s.validate()
        return s

    def to_env(self) -> dict[str, str]:
        return {f"ZHIE_{f.name.upper()}": str(int(v) if isinstance(v, bool) else v)
                for f in fields(self) for v in [getattr(self, f.name)]}

    def validate(self) -> None:
        def bad(flag: str, why: str):
            raise ValueError(f"--{flag.replace('_', '-')} (ZHIE_{flag.upper()}): {why}")

        for name in ("max_text_chars", "max_request_chars", "max_batch_items", "workers", "window", "analyze_max_chars",
                     "batch_chars", "max_queue", "max_schema_depth", "max_schema_nodes"):
            if getattr(self, name) < 1:
                bad(name, "must be at least 1")
        if self.max_request_chars < self.max_text_chars:
            bad("max_request_chars", f"must be >= max_text_chars ({self.max_text_chars})")
        if not 0 <= self.overlap < self.window:
            bad("overlap", f"must be >= 0 and smaller than the window ({self.window})")
        if self.max_queue < self.max_batch_items:
            bad("max_queue", f"must be >= max_batch_items ({self.max_batch_items}), or a full request could never be queued")
        if self.request_timeout_s <= 0 or self.batch_wait_ms < 0:
            bad("request_timeout_s" if self.request_timeout_s <= 0 else "batch_wait_ms", "must be positive")
        if self.threads < 0:
            bad("threads", "must be >= 0")
        if self.model_concurrency < 0:
            bad("model_concurrency", "must be >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            bad("device", "must be 'auto', 'cpu' or 'cuda'")
        if self.gpu_failures < 1:
            bad("gpu_failures", "must be at least 1")
        if self.gpu_deadline_s <= 0 or self.gpu_cooldown_s < 0:
            bad("gpu_deadline_s" if self.gpu_deadline_s <= 0 else "gpu_cooldown_s", "must be positive")
        if self.gpu_batch_tokens < 1:
            bad("gpu_batch_tokens", "must be at least 1")
        if self.gpu_model not in ("fp16", "int8"):
            bad("gpu_model", "must be 'fp16' or 'int8'")
        def bad_env(name: str, why: str):  # settings with no flag: named by their variable only
            raise ValueError(f"ZHIE_{name.upper()}: {why}")

        for name in ("drain_s", "body_timeout_s", "header_timeout_s", "keep_alive_s"):
            if getattr(self, name) <= 0:
                bad_env(name, "must be positive")
        if self.max_connections < 1 or self.backlog < 1:
            bad_env("max_connections" if self.max_connections < 1 else "backlog", "must be at least 1")
        from .auth import load_api_keys  # a missing key file or a bad key fails here, at start

        try:
            load_api_keys(self)
        except ValueError as e:
            bad_env("api_keys_file" if self.api_keys_file else "api_keys", str(e))


def _parse_bool(v: str) -> bool:
    t = v.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(v)
