"""Issue 22, observability: OpenTelemetry traces as an option (`WANGGE_OTEL_ENDPOINT`). A live
app exports to a real OTLP/HTTP receiver (tests/otlp_collector.py): a request span named by its
route template that continues the caller's `traceparent`, with status and request id, the
statements' spans under it, and no personal data or credential anywhere in what is exported.
Off (the default), nothing is sent."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from tests.factories import point_in_grid
from tests.otlp_collector import Collector
from tests.reliability.live import Server, create_database, drop_database, make_tokens

PHONE = "13812345678"
ID_NUMBER = "11010519491231002X"


async def _prepare(base_url: str, name: str) -> tuple[str, dict[str, str], dict]:
    from app.config import async_url

    url = await create_database(base_url, name)
    eng = create_async_engine(async_url(url))
    async with eng.connect() as c:
        lon, lat = await point_in_grid(c)
    await eng.dispose()
    return url, await make_tokens(url, roles=("worker",)), {"lon": lon, "lat": lat}


def _wait(collector: Collector, pred, seconds: float = 15):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [s for s in list(collector.spans) if pred(s)]
        if found:
            return found
        time.sleep(0.1)
    return []


def test_traces_reach_a_collector_without_personal_data(engine, tmp_path) -> None:
    base_url = os.environ["TEST_DATABASE_URL"]
    name = f"wangge_otel_{uuid.uuid4().hex[:8]}"
    url, tokens, where = asyncio.run(_prepare(base_url, name))
    h = {"Authorization": f"Bearer {tokens['worker']}"}
    try:
        with Collector() as collector:
            env = {
                "WANGGE_OTEL_ENDPOINT": collector.endpoint,
                "WANGGE_OTEL_SERVICE_NAME": "wangge-test",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "WANGGE_SCHEDULER_ENABLED": "false",
                "WANGGE_MEDIA_BACKEND": "dir",
                "WANGGE_MEDIA_DIR": str(tmp_path / "media"),
            }
            server = Server(url, env, log=tmp_path / "app.log")
            server.start()
            try:
                cats = httpx.get(f"{server.base}/api/v1/categories", headers=h).json()
                body = {
                    "category": cats[0]["code"]
                    if isinstance(cats, list)
                    else cats["items"][0]["code"],
                    "title": f"电话 {PHONE}",
                    "description": f"身份证 {ID_NUMBER}，电话 {PHONE}",
                    "location": where,
                }
                made = httpx.post(f"{server.base}/api/v1/cases", json=body, headers=h)
                assert made.status_code == 201, made.text
                trace_id = uuid.uuid4().hex
                parent = uuid.uuid4().hex[:16]
                got = httpx.get(
                    f"{server.base}/api/v1/cases/{made.json()['id']}?q={PHONE}",
                    headers={
                        **h,
                        "traceparent": f"00-{trace_id}-{parent}-01",
                        "X-Request-ID": "trace-1",
                    },
                )
                assert got.status_code in (200, 422), got.text
                spans = _wait(collector, lambda s: s.trace_id == trace_id and s.kind == 2)
            finally:
                server.stop()
            assert spans, f"no server span of trace {trace_id}: {[s.name for s in collector.spans]}"
            assert len(spans) == 1, [
                (s.name, s.kind) for s in collector.spans if s.trace_id == trace_id
            ]
            [span] = spans
            assert span.service == "wangge-test"
            assert span.name == "GET /api/v1/cases/{case_id}"
            assert span.parent_id == parent  # the caller's traceparent is continued
            assert span.attributes["http.route"] == "/api/v1/cases/{case_id}"
            assert span.attributes["wangge.request_id"] == "trace-1"
            assert span.attributes["http.response.status_code"] == got.status_code
            statements = [s for s in collector.spans if s.trace_id == trace_id and s.kind != 2]
            assert statements, "no statement spans under the request"
            assert all(s.parent_id for s in statements)
            post = [s for s in collector.spans if s.name == "POST /api/v1/cases"]
            assert post and post[0].attributes["http.response.status_code"] == 201
            everything = b"".join(collector.raw)
            for secret in (PHONE.encode(), ID_NUMBER.encode(), tokens["worker"].encode()):
                assert secret not in everything
    finally:
        asyncio.run(drop_database(base_url, name))


def test_without_an_endpoint_nothing_is_traced() -> None:
    from app.observability import tracing

    assert tracing.tracer is None  # the test suite's app runs without WANGGE_OTEL_ENDPOINT
