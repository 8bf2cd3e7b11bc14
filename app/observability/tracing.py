"""OpenTelemetry traces, an option for deployments that run a collector (`WANGGE_OTEL_ENDPOINT`;
off by default, and then nothing of OpenTelemetry is imported).

The request span is made by `app.observability.middleware` with what it already knows and
nothing else: the method, the route template (`GET /api/v1/cases/{case_id}`), the status and
the request id. Never the path's values, the query string, headers or bodies, so no personal
data and no credential can reach a trace. The caller's W3C `traceparent` is continued. The
statements get a span each from the asyncpg instrumentation (without their parameters: our
SQL carries binds, never values). Spans are exported in batches over OTLP/HTTP."""

from __future__ import annotations

from typing import Any

from app.config import Settings

_provider: Any = None
tracer: Any = None
"""The tracer when tracing is on, else None (the middleware's one check)."""


def configure_tracing(settings: Settings) -> None:
    global _provider, tracer
    if not settings.otel_endpoint or tracer is not None:
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    _provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name})
    )
    endpoint = settings.otel_endpoint.rstrip("/") + "/v1/traces"
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(_provider)
    AsyncPGInstrumentor(capture_parameters=False).instrument(tracer_provider=_provider)
    tracer = _provider.get_tracer("wangge")


def shutdown_tracing() -> None:
    """Flush what is buffered (at the end of the process's lifespan)."""
    global _provider, tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = tracer = None


def start_request_span(method: str, headers: list[tuple[bytes, bytes]], request_id: str) -> Any:
    from opentelemetry import propagate, trace

    carrier = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in headers
        if k in (b"traceparent", b"tracestate")
    }
    return tracer.start_span(
        method,
        context=propagate.extract(carrier),
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": method, "wangge.request_id": request_id},
    )


def end_request_span(span: Any, method: str, route: str, status: int) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
