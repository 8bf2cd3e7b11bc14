"""The FastAPI application: routers, error handlers, body limits. No database work at import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import docs_ui, errors, extensions, observability, ratelimit
from app import models as _all_models  # noqa: F401 (every model: foreign keys resolve at run time)
from app.admission.router import router as admission_router
from app.areas.router import router as areas_router
from app.audit.router import router as audit_router
from app.auth import tokens
from app.auth.router import router as auth_router
from app.auth.signed_url import SignedUrlMiddleware
from app.basedata import crypto as basedata_crypto
from app.basedata.router import router as basedata_router
from app.basedata.transfer_router import router as basedata_transfer_router
from app.buildings.router import router as buildings_router
from app.calendar.router import router as calendar_router
from app.cases.router import router as cases_router
from app.categories.router import router as categories_router
from app.community.router import dept_router as department_tasks_router
from app.community.router import router as community_router
from app.config import get_settings
from app.console.router import router as console_router
from app.db import db
from app.deliberation.router import router as deliberation_router
from app.departments.router import router as departments_router
from app.disputes.router import router as disputes_router
from app.duty.router import router as duty_router
from app.events import outbox, webhooks
from app.events import stream as event_stream
from app.events.webhooks.router import router as webhooks_router
from app.fieldapp.router import router as fieldapp_router
from app.grids import lookup_index
from app.grids.router import lookup_router as grids_lookup_router
from app.grids.router import router as grids_router
from app.health.router import router as health_router
from app.http import (
    BodyLimitMiddleware,
    ForwardedMiddleware,
    HtmlSecurityHeadersMiddleware,
    compression,
)
from app.lists.router import router as lists_router
from app.loop import scheduler
from app.loop.router import router as loop_router
from app.meetings.router import router as meetings_router
from app.ogc.router import router as ogc_router
from app.open311.keys_router import router as open311_keys_router
from app.open311.qr_router import router as open311_qr_router
from app.open311.router import router as open311_router
from app.open311.staff_router import router as open311_staff_router
from app.openapi import build_openapi
from app.patrols.router import router as patrols_router
from app.push import service as push
from app.push import vapid as push_keys
from app.push.router import router as push_router
from app.responses import FastJSON
from app.stats import derive
from app.stats.router import router as stats_router
from app.sync.router import router as sync_router
from app.tiles.router import router as tiles_router
from app.users.router import me_router
from app.users.router import router as users_router
from app.volunteers.router import router as volunteers_router
from app.worker_tasks.router import router as worker_tasks_router

DESCRIPTION = """
wangge — 网格化管理开放后端. The district → street → community → grid tree on PostGIS,
case intake and the closed loop of "社区吹哨、部门报到".

Errors are RFC 9457 `application/problem+json` with a stable `code`. Labels and messages are in
Chinese unless `Accept-Language: en`. Coordinates are WGS84 unless `crs` says gcj02, bd09 or
cgcs2000. Times are shown in Asia/Shanghai.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    push_keys.private_key()  # production refuses to start without WANGGE_VAPID_PRIVATE_KEY
    basedata_crypto.keyring()  # production refuses the development (or no) encryption key
    stop = asyncio.Event()
    tasks = []
    if settings.scheduler_enabled and settings.env != "test":
        tasks.append(asyncio.create_task(scheduler.run_forever(stop)))
        tasks.append(asyncio.create_task(webhooks.run_forever(stop)))
        tasks.append(asyncio.create_task(push.run_forever(stop)))
    if settings.env != "test":
        tasks.append(asyncio.create_task(derive.run_forever(stop)))
    tasks.append(asyncio.create_task(ratelimit.run_forever(stop, db.hot.connect)))
    tasks.append(asyncio.create_task(outbox.run_forever(stop, db.hot.connect)))
    if settings.lookup_index:
        tasks.append(
            asyncio.create_task(
                lookup_index.run_forever(
                    stop,
                    db.hot.connect,
                    settings.lookup_index_refresh_seconds,
                    settings.lookup_index_max_grids,
                )
            )
        )
    await event_stream.hub.start()
    yield
    stop.set()
    for t in tasks:
        await t
    await event_stream.hub.stop()
    await db.dispose()
    observability.shutdown_tracing()


def create_app() -> FastAPI:
    settings = get_settings()
    extensions.register()
    app = FastAPI(
        title="wangge",
        version="0.1.0",
        description=DESCRIPTION,
        default_response_class=FastJSON,
        lifespan=lifespan,
        docs_url=None,  # served by app.docs_ui from the package, not a CDN
        redoc_url=None,
        # FastAPI's own OpenTelemetry spans carry the path's and the query string's values and
        # exception messages (personal data, signed URL credentials): ours carry none of them
        # (app.observability.tracing).
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
    )
    docs_ui.install(app, "wangge")
    errors.install(app)
    import_limit = settings.max_import_bytes
    ledger_limit = settings.max_ledger_bytes
    body_limit = settings.max_body_bytes
    upload_limit = settings.max_upload_bytes * settings.max_photos_per_step + 65536
    qr_limit = settings.max_upload_bytes + 65536  # the residents' form: one photo

    def token_ok(token: str) -> bool:
        try:
            tokens.decode_access_token(token)
        except errors.ApiError:
            return False
        return True

    # Innermost: `/s/<signed credential>/tiles|ogc…` served as the map with that credential
    app.add_middleware(SignedUrlMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        # the large bodies (photos, imports) come only with a valid token: checked on the
        # headers, before any of the body is read
        token_first=lambda method, path: (
            method == "POST" and path.endswith(("/attachments", "/import"))
        ),
        token_ok=token_ok,
        limit_for=lambda path: (
            ledger_limit
            if path.endswith("/basedata/import")
            else import_limit
            if path.endswith("/import")
            else upload_limit
            if path.endswith("/attachments")
            else qr_limit
            if path.startswith("/open311/qr/")
            else body_limit
        ),
    )
    app.add_middleware(
        compression, min_bytes=settings.compress_min_bytes, level=settings.compress_level
    )
    # JSON logs, request ids, /metrics (added last: its middleware is the outermost of ours)
    observability.install(app, sse_subscribers=lambda: event_stream.hub.subscribers)
    app.add_middleware(HtmlSecurityHeadersMiddleware)
    # Outermost: the client's address as every layer sees it (only behind configured proxies)
    app.add_middleware(ForwardedMiddleware, trusted=settings.proxy_networks)
    for router in (
        health_router,
        # The point lookup alone (every QR scan and phone report), then the tiles.
        grids_lookup_router,
        # First: the route table is matched in order, and a tile is the hottest path (matching
        # past the 15 routers before it costs ~0.2 ms a request, measured in process).
        tiles_router,
        # Then the phone's hot paths: a report, its photos, the sync, the patrols' batches of
        # track points and the worker's own tasks (matching past the routers before them cost
        # 0.14 ms of CPU a report, 0.32 ms a batch, 0.35 ms `/me/tasks`: bench/bench_routes.py).
        cases_router,
        sync_router,
        patrols_router,
        worker_tasks_router,
        auth_router,
        me_router,
        users_router,
        departments_router,
        areas_router,
        grids_router,
        buildings_router,
        categories_router,
        loop_router,
        calendar_router,
        webhooks_router,
        event_stream.router,
        stats_router,
        audit_router,
        open311_router,
        open311_qr_router,
        open311_keys_router,
        open311_staff_router,
        console_router,
        fieldapp_router,
        ogc_router,
        community_router,
        department_tasks_router,
        lists_router,
        meetings_router,
        deliberation_router,
        volunteers_router,
        duty_router,
        admission_router,
        push_router,
        basedata_router,
        basedata_transfer_router,
        disputes_router,
    ):
        app.include_router(router)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


app = create_app()
