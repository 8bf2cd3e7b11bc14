"""The metrics (prometheus-client, this process's registry). Counted where they happen; the
database figures (outbox lag, pool use) are read when /metrics is scraped."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "wangge_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "wangge_http_request_duration_seconds",
    "Time to answer (to the end of the body), by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "wangge_rate_limit_refusals_total",
    "Requests refused by a rate limit (429), by route template",
    ["route"],
    registry=REGISTRY,
)
CASES_REPORTED = Counter(
    "wangge_cases_reported_total",
    "Cases taken in, by district id and channel",
    ["district", "channel"],
    registry=REGISTRY,
)
CLOCK_RUNS = Counter(
    "wangge_clock_runs_total",
    "Runs of the loop's clock in this process, by result (ok, failed)",
    ["result"],
    registry=REGISTRY,
)
WEBHOOK_FAILURES = Counter(
    "wangge_webhook_failures_total",
    "Webhook delivery attempts that failed (the receiver refused or could not be reached)",
    registry=REGISTRY,
)
WEBHOOK_SENT = Counter(
    "wangge_webhook_deliveries_total",
    "Webhook deliveries that the receiver accepted",
    registry=REGISTRY,
)
SSE_SUBSCRIBERS = Gauge(
    "wangge_sse_subscribers",
    "Live event streams open on this process",
    registry=REGISTRY,
)
POOL = Gauge(
    "wangge_db_pool_connections",
    "Database pool connections of this process, by state (in_use, idle, overflow, size)",
    ["state"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "wangge_outbox_pending_deliveries",
    "Webhook deliveries due and not yet accepted (not given up)",
    registry=REGISTRY,
)
OUTBOX_LAG = Gauge(
    "wangge_outbox_lag_seconds",
    "Age of the oldest event with a delivery due and not yet accepted (0: none waiting)",
    registry=REGISTRY,
)
DERIVE_PENDING = Gauge(
    "wangge_derive_pending_cases",
    "Changed cases whose evaluation facts the background catch-up has not recomputed yet",
    registry=REGISTRY,
)
DB_UP = Gauge(
    "wangge_db_up",
    "1 when the scrape's database read worked",
    registry=REGISTRY,
)


def case_reported(district_id: object, channel: str) -> None:
    CASES_REPORTED.labels(district=str(district_id), channel=channel).inc()


def clock_run(ok: bool) -> None:
    CLOCK_RUNS.labels(result="ok" if ok else "failed").inc()


def webhook_results(sent: int, failed: int) -> None:
    if sent:
        WEBHOOK_SENT.inc(sent)
    if failed:
        WEBHOOK_FAILURES.inc(failed)
