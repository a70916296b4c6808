"""Prometheus metrics, on a registry per app (tests build many apps in one process).

Runs are counted in one place, :func:`record_run`, which the run path calls once a run's
outcome is stored (``runs.service.finish_run`` for session runs,
``openai_compat.service.record_sessionless`` for calls without a session). It reaches the
app's metrics through the request context the middleware sets (``request_context.py``), so
no run function takes a metrics argument; outside a request (a test calling a service
function directly) nothing is counted.

Labels stay bounded: chat model names and version numbers (an admin creates them),
outcomes and error types (a fixed vocabulary, ``llm/outcomes.py``), route templates (never
raw paths), HTTP methods and status codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from chatmodel_service.llm.types import LLMFailure, LLMOutcome, LLMResult
from chatmodel_service.observability.request_context import current_request

# A model call takes from tens of milliseconds to the 120 s timeout.
RUN_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
HTTP_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ServiceMetrics:
    """The app's metrics and the registry ``/metrics`` renders."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        ProcessCollector(registry=registry)  # process_* (memory, CPU, open files; Linux)
        self.runs = Counter(
            "chatmodel_runs",
            "Runs recorded, by chat model, version and outcome (error_type empty on success).",
            ["chat_model", "version", "outcome", "error_type"],
            registry=registry,
        )
        self.run_seconds = Histogram(
            "chatmodel_run_duration_seconds",
            "A run's whole request, from arrival until its outcome is stored (a streamed "
            "run: until its last event).",
            ["chat_model", "outcome"],
            buckets=RUN_SECONDS_BUCKETS,
            registry=registry,
        )
        self.upstream_seconds = Histogram(
            "chatmodel_run_upstream_duration_seconds",
            "The model call alone (retries and fallbacks included), for calls the gateway "
            "finished.",
            ["chat_model", "outcome"],
            buckets=RUN_SECONDS_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "chatmodel_run_tokens",
            "Tokens the provider reported, by kind (prompt or completion).",
            ["chat_model", "version", "kind"],
            registry=registry,
        )
        self.cost = Counter(
            "chatmodel_run_cost_usd",
            "Price of the runs in US dollars, as LiteLLM computes it.",
            ["chat_model", "version"],
            registry=registry,
        )
        self.active_streams = Gauge(
            "chatmodel_active_streams",
            "Streamed model calls in progress (session runs and OpenAI-compatible).",
            registry=registry,
        )
        self.busy_rejections = Counter(
            "chatmodel_busy_rejections",
            "Runs refused with 409 because another run holds the session (session_busy) "
            "or the first request with the Idempotency-Key is still running "
            "(run_in_progress).",
            ["code"],
            registry=registry,
        )
        self.http_requests = Counter(
            "chatmodel_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            "chatmodel_http_request_duration_seconds",
            "Time to answer an HTTP request (a stream: until its last byte).",
            ["method", "route"],
            buckets=HTTP_SECONDS_BUCKETS,
            registry=registry,
        )

    def observe_run(
        self, chat_model: str, version: int, outcome: LLMOutcome, total_seconds: float
    ) -> None:
        version_label = str(version)
        failure = outcome if isinstance(outcome, LLMFailure) else None
        result = outcome if isinstance(outcome, LLMResult) else None
        status = "failed" if failure else "succeeded"
        error_type = failure.error_type if failure else ""
        self.runs.labels(chat_model, version_label, status, error_type).inc()
        self.run_seconds.labels(chat_model, status).observe(total_seconds)
        # Outcomes made outside the gateway (a prompt that cannot fit, a client gone
        # mid-stream, a server shutting down) have no attempts: no model call finished.
        if outcome.attempts:
            self.upstream_seconds.labels(chat_model, status).observe(outcome.latency_ms / 1000)
        if result is not None:
            if result.prompt_tokens:
                self.tokens.labels(chat_model, version_label, "prompt").inc(result.prompt_tokens)
            if result.completion_tokens:
                completion = result.completion_tokens
                self.tokens.labels(chat_model, version_label, "completion").inc(completion)
            if result.cost:
                self.cost.labels(chat_model, version_label).inc(result.cost)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "other"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


def record_run(chat_model: str | None, version: int, outcome: LLMOutcome) -> None:
    """Count a stored run in the current request's app (no-op outside a request)."""
    context = current_request()
    if context is not None and chat_model is not None:
        context.metrics.observe_run(chat_model, version, outcome, context.elapsed())


def count_busy_rejection(code: str) -> None:
    """Count a run refused because its session is busy (``session_busy``,
    ``run_in_progress``); called where that error becomes a response."""
    context = current_request()
    if context is not None:
        context.metrics.busy_rejections.labels(code).inc()


@asynccontextmanager
async def tracked_stream() -> AsyncIterator[None]:
    """Counts a streamed model call in ``chatmodel_active_streams`` while it lasts."""
    context = current_request()
    if context is None:
        yield
        return
    gauge = context.metrics.active_streams
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()
