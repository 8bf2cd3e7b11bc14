"""GET /metrics (Prometheus text format). Not for the public: answered to loopback clients only,
or, when `WANGGE_METRICS_TOKEN` is set, to any client sending `Authorization: Bearer <token>`
(a scraper on another host). Anything else gets 404, as if there were nothing here."""

from __future__ import annotations

import hmac
import ipaddress

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from app.config import get_settings
from app.db import db
from app.errors import ApiError, problem_response
from app.observability import metrics

_OUTBOX = text(
    """
    SELECT count(*) AS pending,
           COALESCE(EXTRACT(epoch FROM now() - min(e.at)), 0) AS lag
    FROM webhook_deliveries d JOIN events e ON e.id = d.event_id AND e.district_id = d.district_id
    WHERE d.delivered_at IS NULL AND NOT d.gave_up AND d.next_attempt_at <= now()
    """
)
_DERIVE = text("SELECT count(DISTINCT case_id) FROM case_changes")


def allowed(request: Request) -> bool:
    token = get_settings().metrics_token
    if token:
        got = request.headers.get("authorization", "")
        return hmac.compare_digest(got.encode(), f"Bearer {token}".encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _database_figures() -> None:
    engine = db._engine
    if engine is not None:
        pool = engine.pool
        for state, fn in (
            ("in_use", "checkedout"),
            ("idle", "checkedin"),
            ("overflow", "overflow"),
            ("size", "size"),
        ):
            f = getattr(pool, fn, None)
            if f is not None:
                metrics.POOL.labels(state).set(max(0, f()))
    try:
        async with db.reader.connect() as conn:
            row = (await conn.execute(_OUTBOX)).one()
            derive = (await conn.execute(_DERIVE)).scalar_one()
        metrics.OUTBOX_PENDING.set(row.pending)
        metrics.OUTBOX_LAG.set(float(row.lag))
        metrics.DERIVE_PENDING.set(derive)
        metrics.DB_UP.set(1)
    except Exception:
        metrics.DB_UP.set(0)


async def metrics_endpoint(request: Request) -> Response:
    if not allowed(request):
        return problem_response(request, ApiError("route_not_found", status=404))
    await _database_figures()
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
