"""Platform: what an operator watches. Prometheus metrics at /metrics, structured JSON logs with a
request id on every line (and in every problem+json answer), no personal data in the logs.

`install(app, ...)` is called from `create_app`; the layers above register what only they know
(the live stream's subscribers) as callbacks, and count their own events through `metrics`."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from app.config import get_settings
from app.observability import metrics
from app.observability.logs import configure_logging
from app.observability.middleware import RequestContextMiddleware
from app.observability.router import metrics_endpoint
from app.observability.tracing import configure_tracing, shutdown_tracing

__all__ = ["configure_logging", "install", "metrics", "shutdown_tracing"]


def install(app: FastAPI, *, sse_subscribers: Callable[[], int] | None = None) -> None:
    configure_logging()
    configure_tracing(get_settings())
    if sse_subscribers is not None:
        metrics.SSE_SUBSCRIBERS.set_function(lambda: float(sse_subscribers()))
    # Outermost but for Starlette's own error middleware: every answer gets its request id.
    app.add_middleware(RequestContextMiddleware)
    # A plain route (not in the OpenAPI document, no API policy): guarded by its own rule.
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
