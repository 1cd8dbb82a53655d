"""Prometheus metrics, fed once per stream from its finished record.

Nothing here runs per token: a stream's counts are kept on its
``StreamRecord`` (which the log line is written from too) and added to the
metrics when the stream ends, so the metrics and the log lines agree by
construction.  The number of open streams is read at scrape time.

``prometheus-client`` is an optional extra (``pip install 'llm-sse[metrics]'``):
the library that defines the exposition format, kept by the Prometheus
project.  Without it the service runs the same and ``/metrics`` says what to
install.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Protocol

from .streamlog import StreamRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From a fast local model's first token to a cold 70B load.
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class Metrics(Protocol):
    """What the service reports; the same calls whether or not metrics are on."""

    available: bool

    def stream_finished(self, record: StreamRecord) -> None: ...

    def request_rejected(self, code: str) -> None: ...

    def rate_limited(self, limit: str) -> None: ...

    def follower_finished(self, kind: str, outcome: str) -> None: ...

    def render(self) -> bytes: ...


class NoMetrics:
    """Used when prometheus-client is not installed: every call does nothing."""

    available = False

    def stream_finished(self, record: StreamRecord) -> None:
        pass

    def request_rejected(self, code: str) -> None:
        pass

    def rate_limited(self, limit: str) -> None:
        pass

    def follower_finished(self, kind: str, outcome: str) -> None:
        pass

    def render(self) -> bytes:
        return b""


class PrometheusMetrics:
    """The service's metrics in their own registry (one per application)."""

    available = True

    def __init__(self, open_streams: Callable[[], int]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        active = Gauge("llm_sse_streams_active", "Streams open now.", registry=r)
        active.set_function(lambda: float(open_streams()))
        self.streams = Counter(
            "llm_sse_streams", "Streams ended, by provider and outcome.", ["provider", "outcome"], registry=r
        )
        self.tokens = Counter(
            "llm_sse_tokens", "Tokens relayed to clients, by provider and kind.", ["provider", "kind"], registry=r
        )
        self.ttft = Histogram(
            "llm_sse_time_to_first_token_seconds",
            "From the request to the first token or thinking frame.",
            ["provider"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "llm_sse_stream_duration_seconds",
            "From the request to the stream's end.",
            ["provider"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "llm_sse_upstream_attempts",
            "Attempts to stream from a provider, by result (ok or the error code).",
            ["provider", "result"],
            registry=r,
        )
        self.fallbacks = Counter(
            "llm_sse_fallbacks", "Streams served by a provider after an earlier one failed.", ["provider"], registry=r
        )
        self.cancels = Counter("llm_sse_cancels", "Streams whose client went away before the end.", registry=r)
        self.skipped = Counter(
            "llm_sse_skipped_upstream_lines", "Upstream lines skipped as malformed.", ["provider"], registry=r
        )
        self.heartbeats = Counter("llm_sse_heartbeats", "Heartbeat comments sent to clients.", registry=r)
        self.rejected = Counter(
            "llm_sse_requests_rejected", "Requests answered with an error before any stream.", ["code"], registry=r
        )
        self.limited = Counter("llm_sse_rate_limited", "Requests refused by a limit.", ["limit"], registry=r)
        self.followers = Counter(
            "llm_sse_followers",
            "Connections that read a resumable stream (post: the one that started it; resume: a GET), by outcome.",
            ["kind", "outcome"],
            registry=r,
        )

    def stream_finished(self, record: StreamRecord) -> None:
        provider = record.provider or "none"
        self.streams.labels(provider, record.outcome).inc()
        if record.tokens:
            self.tokens.labels(provider, "answer").inc(record.tokens)
        if record.thinking_tokens:
            self.tokens.labels(provider, "thinking").inc(record.thinking_tokens)
        if record.first_token_at is not None:
            self.ttft.labels(provider).observe(record.first_token_at - record.started)
        if record.ended is not None:
            self.duration.labels(provider).observe(record.ended - record.started)
        for attempt in record.attempts:
            self.attempts.labels(attempt.provider, attempt.code).inc()
        if record.served:
            self.attempts.labels(provider, "ok").inc()
            if record.attempts:
                self.fallbacks.labels(provider).inc()
        if record.outcome == "cancelled":
            self.cancels.inc()
        if record.skipped_lines:
            self.skipped.labels(provider).inc(record.skipped_lines)
        if record.heartbeats:
            self.heartbeats.inc(record.heartbeats)

    def request_rejected(self, code: str) -> None:
        self.rejected.labels(code).inc()

    def rate_limited(self, limit: str) -> None:
        self.limited.labels(limit).inc()

    def follower_finished(self, kind: str, outcome: str) -> None:
        self.followers.labels(kind, outcome).inc()

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        data: bytes = generate_latest(self.registry)
        return data


def create_metrics(open_streams: Callable[[], int]) -> Metrics:
    """Prometheus metrics if the extra is installed, else no-ops."""
    if importlib.util.find_spec("prometheus_client") is None:
        return NoMetrics()
    return PrometheusMetrics(open_streams)


__all__ = ["CONTENT_TYPE", "Metrics", "NoMetrics", "PrometheusMetrics", "create_metrics"]
