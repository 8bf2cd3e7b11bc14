"""The request context: a request id for every request (the client's `X-Request-ID` when it is
a sane token, else a new one), bound to every log line written while the request is served,
returned as `X-Request-ID` and put in every problem+json answer (`request_id`, app.errors reads
`request.state.request_id`); the request's metrics; and, with `WANGGE_ACCESS_LOG`, one log line
per request (method, route template, status, milliseconds: never the query string or body)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import get_settings
from app.observability import metrics, tracing

_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
log = structlog.get_logger("wangge.access")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for k, v in headers:
        if k == b"x-request-id":
            value = v.decode("latin-1").strip()
            if _SANE.match(value):
                return value
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "(unmatched)"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(scope.get("headers") or [])
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", rid.encode("latin-1")),
                ]
            await send(message)

        method = scope.get("method", "")
        span = (
            tracing.start_request_span(method, scope.get("headers") or [], rid)
            if tracing.tracer is not None
            else None
        )
        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                if span is not None:
                    from opentelemetry import trace

                    with trace.use_span(span, end_on_exit=False):
                        await self.app(scope, receive, send_with_id)
                else:
                    await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = route_template(scope)
                if span is not None:
                    tracing.end_request_span(span, method, route, status)
                if route != "/metrics":
                    metrics.REQUESTS.labels(method, route, str(status)).inc()
                    metrics.LATENCY.labels(method, route).observe(elapsed)
                    if status == 429:
                        metrics.RATE_LIMITED.labels(route).inc()
                if get_settings().access_log:
                    log.info(
                        "request",
                        method=method,
                        route=route,
                        status=status,
                        ms=round(elapsed * 1000, 1),
                    )
