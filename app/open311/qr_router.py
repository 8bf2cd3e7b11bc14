"""The residents' QR door: the QR code on a grid's service card (网格连心服务卡) opens a small
mobile page (Chinese, no account) that reports through the Open311 intake with the server's own
QR key: the phone's location (navigator.geolocation), a photo (the attachment pipeline: sniffed,
EXIF stripped), a description. Rate-limited per client address (per hour, counted in PostgreSQL); each page carries a signed,
short-lived form token, which also makes a double submit land on the same case."""

from __future__ import annotations

import hashlib
import hmac
import html
import io
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import ratelimit
from app.auth.policy import Open311Public, Principal
from app.cases import attachments
from app.config import get_settings
from app.db import DbSession, ReaderFactory
from app.errors import ApiError, http_problem, not_found
from app.http import ApiRoute
from app.i18n import negotiate
from app.open311 import keys, public_ids, submission
from app.open311.formats import validation_error

HTML_TYPE = "text/html; charset=utf-8"


def _page(title: str, body: str, nonce: str = "", status: int = 200, **headers: str) -> Response:
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: blob:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        + (f"; script-src 'nonce-{nonce}'" if nonce else "")
    )
    doc = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;
padding:16px;max-width:640px;margin:auto;line-height:1.5;color:#222}}
h1{{font-size:1.3em}} label{{display:block;margin-top:14px;font-weight:600}}
select,textarea,input[type=tel],input[type=file]{{width:100%;box-sizing:border-box;font-size:1em;
padding:8px;margin-top:4px}} textarea{{min-height:7em}}
button{{margin-top:20px;width:100%;padding:14px;font-size:1.1em;background:#c8102e;color:#fff;
border:0;border-radius:6px}} .muted{{color:#666;font-size:.9em}} .box{{background:#f5f5f5;
padding:12px;border-radius:6px}}
</style></head><body>{body}</body></html>"""
    return Response(
        doc,
        status,
        media_type=HTML_TYPE,
        headers={"Content-Security-Policy": csp, "Cache-Control": "no-store", **headers},
    )


def error_page(request: Request, err: ApiError) -> Response:
    lang = negotiate(request.headers.get("accept-language"))
    body = err.body(lang)
    status = 400 if err.http_status == 422 else err.http_status
    return _page(
        "上报未成功",
        f"<h1>上报未成功</h1><p>{html.escape(body['detail'])}</p>"
        '<p class="muted">请返回上一页修改后重试，或拨打服务卡上的社区电话。</p>',
        status=status,
        **(err.headers or {}),
    )


class QrRoute(ApiRoute):
    """Errors of the QR pages come as a small HTML page (a browser shows it), not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as e:
                return error_page(request, e)
            except RequestValidationError as e:
                return error_page(request, validation_error(e))
            except StarletteHTTPException as e:  # e.g. a multipart body that cannot be read
                return error_page(request, http_problem(request, e))

        return page


router = APIRouter(prefix="/open311/qr", tags=["open311"], route_class=QrRoute)


# --- the form token: which grid, when the page was opened, a nonce; signed ---------------------


def _sign(grid_code: str, issued: int, nonce: str) -> str:
    msg = f"qr1|{grid_code}|{issued}|{nonce}".encode()
    return hmac.new(get_settings().signing_key.encode(), msg, hashlib.sha256).hexdigest()


def form_token(grid_code: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    nonce = uuid.uuid4().hex
    return f"{issued}.{nonce}.{_sign(grid_code, issued, nonce)}"


def check_form_token(token: str, grid_code: str, now: float | None = None) -> uuid.UUID:
    """The form's nonce (the Open311 token of the case it makes), or 400 when the token is
    forged, for another grid, or older than `qr_form_hours`."""
    now = time.time() if now is None else now
    try:
        issued_s, nonce, sig = token.split(".")
        issued = int(issued_s)
        ok = hmac.compare_digest(sig, _sign(grid_code, issued, nonce))
        age = now - issued
        if ok and -60 <= age <= get_settings().qr_form_hours * 3600:
            return uuid.UUID(hex=nonce)
    except ValueError:
        pass
    raise ApiError(
        "validation_error",
        status=400,
        field="token",
        detail="表单已过期或无效，请重新扫码后填写",
        detail_en="The form has expired or is invalid; scan the code again",
    )


# --- pages --------------------------------------------------------------------------------------

_GRID = text(
    """
    SELECT g.id, g.code, g.name, c.name AS community, c.phone AS community_phone,
           ST_X(ST_PointOnSurface(b.boundary)) AS lon, ST_Y(ST_PointOnSurface(b.boundary)) AS lat
    FROM grids g JOIN areas c ON c.id = g.community_id
    JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL
    WHERE g.code = :code AND g.deleted_at IS NULL
    """
)
_SERVICES = text(
    """
    SELECT c.code, c.name, k.name AS group_name
    FROM categories c JOIN category_classes k ON k.code = c.class_code
    WHERE c.active ORDER BY k.code, c.code
    """
)
_DONE = text(
    """
    SELECT c.id, c.number FROM open311_requests o
    JOIN cases c ON c.id = o.case_id AND c.district_id = o.district_id
    WHERE o.token = :t
    """
)
"""The form's nonce, in whichever district the case went to (the phone's point decides it): the
one statement here that cannot name the district; the join on it keeps to the request's shard."""


async def _grid(session: AsyncSession, code: str) -> Any:
    row = (await session.execute(_GRID, {"code": code})).first()
    if row is None:
        raise not_found("网格", "Grid", code)
    return row


def _options(rows: list[Any]) -> str:
    out, group = [], None
    for r in rows:
        if r.group_name != group:
            if group is not None:
                out.append("</optgroup>")
            group = r.group_name
            out.append(f'<optgroup label="{html.escape(group)}">')
        out.append(f'<option value="{html.escape(r.code)}">{html.escape(r.name)}</option>')
    if group is not None:
        out.append("</optgroup>")
    return "".join(out)


_SCRIPT = """
var st=document.getElementById('geo');
if(navigator.geolocation){navigator.geolocation.getCurrentPosition(function(p){
document.getElementById('lat').value=p.coords.latitude;
document.getElementById('long').value=p.coords.longitude;
document.getElementById('acc').value=p.coords.accuracy;
st.textContent='已获取手机定位（精度约 '+Math.round(p.coords.accuracy)+' 米）';},
function(){st.textContent='未能获取定位，将按本网格位置上报';},
{enableHighAccuracy:true,timeout:15000,maximumAge:60000});}
else{st.textContent='浏览器不支持定位，将按本网格位置上报';}
document.getElementById('f').addEventListener('submit',function(){
var b=document.getElementById('go');b.disabled=true;b.textContent='正在提交…';});
"""


def report_link(request: Request, grid_code: str) -> str:
    """The absolute address of a grid's report page (what its QR code holds)."""
    base = get_settings().public_url or str(request.base_url)
    return f"{base.rstrip('/')}/open311/qr/{quote(grid_code, safe='')}"


def qr_svg(link: str, title: str) -> bytes:
    buf = io.BytesIO()
    segno.make(link, error="m").save(buf, kind="svg", scale=8, border=4, title=title)
    return buf.getvalue()


@router.get(
    "/{grid_code}/qr.svg",
    summary="The QR code of a grid's report page, for printing on its service card",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def qr_image(
    grid_code: str, request: Request, session: DbSession, who: Open311Public
) -> Response:
    grid = await _grid(session, grid_code)
    svg = qr_svg(report_link(request, grid.code), f"{grid.name} 问题反映")
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get(
    "/{grid_code}",
    summary="The residents' report page of a grid (the service card's QR code opens it)",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
async def form_page(grid_code: str, session: DbSession, who: Open311Public) -> Response:
    grid = await _grid(session, grid_code)
    services = list((await session.execute(_SERVICES)).all())
    nonce = secrets.token_urlsafe(16)
    code = html.escape(grid.code)
    phone = (
        f"<p class='muted'>社区电话：{html.escape(grid.community_phone)}</p>"
        if grid.community_phone
        else ""
    )
    body = f"""<h1>随手拍 · 问题反映</h1>
<p class="box">{html.escape(grid.community)} · {html.escape(grid.name)}</p>
<form id="f" method="post" action="/open311/qr/{code}" enctype="multipart/form-data">
<input type="hidden" name="token" value="{html.escape(form_token(grid.code))}">
<input type="hidden" id="lat" name="lat"><input type="hidden" id="long" name="long">
<input type="hidden" id="acc" name="accuracy">
<label for="sc">问题类型</label>
<select id="sc" name="service_code" required>{_options(services)}</select>
<label for="d">情况描述</label>
<textarea id="d" name="description" maxlength="2000" required
 placeholder="请描述问题和具体位置，如：3 栋楼下垃圾堆放两天未清运"></textarea>
<label for="p">现场照片（可选）</label>
<input id="p" type="file" name="photo" accept="image/*" capture="environment">
<label for="t">联系电话（可选，仅用于回访，不公开）</label>
<input id="t" type="tel" name="phone" maxlength="20" inputmode="tel">
<p id="geo" class="muted">正在获取手机定位…</p>
<button id="go" type="submit">提交</button>
</form>{phone}
<p class="muted">无需注册。请如实反映，紧急情况请直接拨打 110、119、120。</p>
<script nonce="{nonce}">{_SCRIPT}</script>"""
    return _page("问题反映", body, nonce)


def _done_page(case_id: int, number: str) -> Response:
    return _page(
        "已收到",
        f"""<h1>已收到您的反映</h1><p class="box">事件编号：<b>{html.escape(number)}</b></p>
<p>网格员将尽快核实处理。处理进度可凭编号向社区查询，或查看
<a href="/open311/v2/requests/{public_ids.encode(case_id)}.json">办理状态</a>。</p>""",
    )


@router.post(
    "/{grid_code}",
    summary="Send the residents' report form (multipart; no account; rate-limited)",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}, 429: {"description": "Too many reports"}},
)
async def submit_form(
    grid_code: str,
    request: Request,
    session: DbSession,
    connect: ReaderFactory,
    who: Open311Public,
    token: Annotated[str, Form(max_length=200)],
    service_code: Annotated[str, Form(max_length=16)],
    description: Annotated[str, Form(min_length=1, max_length=2000)],
    lat: Annotated[str | None, Form(max_length=40)] = None,
    long: Annotated[str | None, Form(max_length=40)] = None,
    accuracy: Annotated[str | None, Form(max_length=40)] = None,
    phone: Annotated[str | None, Form(max_length=20)] = None,
    photo: Annotated[UploadFile | None, File(description="JPEG, PNG, HEIC or WebP")] = None,
) -> Response:
    s = get_settings()
    # Counted in PostgreSQL: the same limit whichever replica answers.
    await ratelimit.check(
        connect, {f"qr:ip:{ratelimit.client_ip(request)}": s.qr_per_hour}, ratelimit.HOUR
    )
    nonce = check_form_token(token, grid_code)
    done = (await session.execute(_DONE, {"t": nonce})).first()
    if done is not None:  # the same page sent twice: the same case
        return _done_page(done.id, done.number)
    grid = await _grid(session, grid_code)
    integrator = await keys.qr_integrator(session)
    if integrator is None:
        raise ApiError(
            "service_unavailable",
            status=503,
            detail="二维码上报暂停服务，请拨打社区电话反映",
            detail_en="QR reporting is closed; call the community instead",
        )
    located = bool(lat and long)
    fields = {
        "service_code": service_code,
        "lat": lat if located else str(grid.lat),
        "long": long if located else str(grid.lon),
        "description": description,
        "phone": phone,
    }
    data, extra = await submission.build_case(session, fields, {}, "zh")
    acc = submission.number(accuracy, "accuracy", 0, 100_000) if located else None
    data.location.accuracy_m = acc
    if not located:
        data.address = f"{grid.community}{grid.name}（扫码上报，未取得手机定位）"[:300]
    extra["attributes"] = {"grid_code": grid.code, "located_by_phone": located}
    upload: list[tuple[str, bytes]] = []
    if photo is not None and photo.filename:
        raw = await photo.read(s.max_upload_bytes + 1)
        if len(raw) > s.max_upload_bytes:
            raise ApiError(
                "payload_too_large",
                field="photo",
                detail=f"照片不能超过 {s.max_upload_bytes // 1_048_576} MB",
                detail_en=f"A photo may be at most {s.max_upload_bytes} bytes",
            )
        if raw:
            upload.append((photo.filename, raw))
    try:
        # A savepoint: a second submission of the same form (its nonce is unique) undoes only
        # itself, and the page of the first one is answered; the request's unit of work commits.
        async with session.begin_nested():
            out = await submission.submit(
                session, integrator, data, extra, jurisdiction=None, lang="zh", token=nonce
            )
            case_id = public_ids.decode(out["service_request_id"])
            assert case_id is not None
            if upload:
                reporter = Principal(
                    user_id=integrator.user_id,
                    username="open311-qr",
                    display_name=integrator.integrator,
                    session_id=nonce,
                )
                await attachments.add_photos(session, case_id, None, upload, reporter)
            await session.flush()
    except IntegrityError:
        done = (await session.execute(_DONE, {"t": nonce})).first()
        if done is None:
            raise
        return _done_page(done.id, done.number)
    return _done_page(case_id, out["extended_attributes"]["case_number"])
