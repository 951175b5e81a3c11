"""Server settings: every field is also an environment variable ``ZHIE_<FIELD>``."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int = 0  # ORT intra-op threads per worker; 0: cores // workers
    device: str = "cpu"
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
    log_level: str = "info"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        values: dict = {}
        for f in fields(cls):
            env = os.environ.get(f"ZHIE_{f.name.upper()}")
            if env is not None:
                kind = type(f.default)
                try:
                    values[f.name] = kind(env)
                except ValueError:
                    raise ValueError(f"ZHIE_{f.name.upper()}={env!r}: expected {kind.__name__}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        s = cls(**values)
        s.validate()
        return s

    def to_env(self) -> dict[str, str]:
        return {f"ZHIE_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}

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
        if self.device not in ("cpu", "cuda"):
            bad("device", "must be 'cpu' or 'cuda'")
