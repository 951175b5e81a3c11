"""Prometheus metrics of one server process, served at ``/metrics``.

With ``--workers N`` each worker keeps its own registry; a scrape reaches one of them.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import ProcessCollector, PlatformCollector

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, cpu seconds, open fds
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter("zhie_requests_total", "HTTP requests", ["route", "method", "status"], registry=r)
        self.latency = Histogram("zhie_request_seconds", "HTTP request latency", ["route", "method", "status"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.inference = Histogram("zhie_inference_seconds", "model call time per batch", ["task"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_items = Histogram("zhie_batch_items", "texts per model call", ["task"],
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.batch_chars = Histogram("zhie_batch_chars", "characters per model call", ["task"],
                                     buckets=(16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576), registry=r)
        self.in_progress = Gauge("zhie_requests_in_progress", "HTTP requests being handled (this one included)", registry=r)
        self.queue_depth = Gauge("zhie_queue_depth", "texts waiting for a model call", ["task"], registry=r)
        self.rejected = Counter("zhie_rejected_total", "requests refused because the queue was full or timed out", ["task", "reason"], registry=r)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
