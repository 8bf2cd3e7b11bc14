"""RFC 9457 problem details: every error the API gives, with a stable machine `code`.

Raise `ApiError` anywhere; the handlers turn it (and the framework's own 404/405/422, and anything
unexpected) into `application/problem+json` in Chinese (default) or English (Accept-Language).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.i18n import Lang, negotiate
from app.responses import FastJSON

log = logging.getLogger("wangge.errors")

PROBLEM_JSON = "application/problem+json"

# code -> (HTTP status, Chinese title, English title). The kernel's own codes; the other
# modules' are added by `register_codes`, called from above (`app.extensions`), never at import.
CATALOG: dict[str, tuple[int, str, str]] = {
    "unauthenticated": (401, "需要登录", "Authentication required"),
    "invalid_token": (401, "令牌无效或已过期", "Invalid or expired token"),
    "invalid_credentials": (401, "用户名或密码错误", "Wrong user name or password"),
    "account_locked": (403, "账号已被临时锁定", "The account is locked for a while"),
    "account_disabled": (403, "账号已停用", "The account is disabled"),
    "demo_account_refused": (
        403,
        "生产环境不允许使用演示账号",
        "Demo accounts are refused in production",
    ),
    "session_expired": (401, "会话已过期，请重新登录", "Session expired; log in again"),
    "token_reused": (
        401,
        "刷新令牌被重复使用，会话已注销",
        "Refresh token reused; the session was revoked",
    ),
    "forbidden": (403, "无权执行此操作", "You may not do this"),
    "read_only_token": (
        403,
        "个人访问令牌只能读取（GET），不能修改数据",
        "A personal API token can only read (GET)",
    ),
    "token_scope": (
        403,
        "该令牌只能读取地图（矢量瓦片与 OGC API）",
        "This token reads the map only (vector tiles and OGC API)",
    ),
    "weak_password": (422, "密码不符合要求", "The password does not meet the rules"),
    "validation_error": (422, "请求内容不合规", "The request is not valid"),
    "malformed_json": (400, "JSON 格式错误", "Malformed JSON"),
    "unsupported_media_type": (415, "不支持的内容类型", "Unsupported media type"),
    "payload_too_large": (413, "请求体过大", "Request body too large"),
    "not_found": (404, "资源不存在", "Not found"),
    "route_not_found": (404, "接口不存在", "No such endpoint"),
    "method_not_allowed": (405, "不支持该请求方法", "Method not allowed"),
    "conflict": (409, "与现有数据冲突", "Conflicts with existing data"),
    "code_exists": (409, "编码已存在", "The code is already in use"),
    "has_children": (409, "存在下级，不能删除", "It still has children and cannot be deleted"),
    "invalid_geometry": (422, "几何图形无效", "Invalid geometry"),
    "invalid_point": (422, "坐标无效", "Invalid coordinates"),
    "import_failed": (422, "导入失败，未写入任何数据", "Import failed; nothing was written"),
    "outside_all_grids": (404, "该位置不在任何网格内", "The point is in no grid"),
    "no_grids": (404, "没有可用的网格", "There are no grids"),
    "unknown_parent": (422, "上级区域不存在", "Unknown parent area"),
    "invalid_parent": (422, "上级区域层级不对", "The parent is of the wrong level"),
    "internal_error": (500, "服务器内部错误", "Internal server error"),
    "database_unavailable": (
        503,
        "数据库暂不可用，请稍后重试",
        "Database unavailable, retry later",
    ),
    "storage_unavailable": (
        503,
        "照片存储暂不可用，请稍后重试",
        "Photo storage unavailable, retry later",
    ),
    "query_timeout": (
        503,
        "查询超时，请缩小范围后重试",
        "Query timed out; narrow it down and retry",
    ),
    "http_error": (400, "请求错误", "Bad request"),
    "invalid_api_key": (403, "api_key 无效或已吊销", "Invalid or revoked api_key"),
    "rate_limited": (429, "请求过于频繁，请稍后再试", "Too many requests; retry later"),
    "service_unavailable": (503, "服务暂停", "Service unavailable"),
    "asset_not_found": (404, "指挥台文件不存在", "No such console file"),
    "basemap_tile_not_found": (404, "底图瓦片不存在", "No such base map tile"),
    "console_not_built": (503, "指挥台尚未构建", "The console is not built"),
    "field_app_not_built": (503, "网格通尚未构建", "The field app is not built"),
    "invalid_parameter": (400, "查询参数无效", "Invalid query parameter"),
    "unknown_collection": (404, "要素集合不存在", "No such collection"),
    "unknown_feature": (404, "要素不存在", "No such feature"),
}


@dataclass
class FieldError:
    field: str | None
    code: str
    message: str
    message_en: str | None = None
    extra: dict[str, Any] | None = None

    def render(self, lang: Lang) -> dict[str, Any]:
        out: dict[str, Any] = {
            "field": self.field,
            "code": self.code,
            "message": self.message_en if lang == "en" and self.message_en else self.message,
        }
        if self.extra:
            out.update(self.extra)
        return out


def register_codes(codes: dict[str, tuple[int, str, str]]) -> None:
    """Add a module's error codes to the catalogue. A code is defined once: registering it
    again with another meaning is a programming error (no silent override)."""
    for code, entry in codes.items():
        if CATALOG.setdefault(code, entry) != entry:
            raise ValueError(f"error code {code!r} is already defined as {CATALOG[code]}")


@dataclass
class ApiError(Exception):
    code: str
    detail: str | None = None
    detail_en: str | None = None
    status: int | None = None
    field: str | None = None
    errors: list[FieldError] = dc_field(default_factory=list)
    extra: dict[str, Any] = dc_field(default_factory=dict)
    headers: dict[str, str] = dc_field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.code)

    def body(self, lang: Lang, instance: str | None = None) -> dict[str, Any]:
        status, title_zh, title_en = CATALOG.get(self.code, (400, self.code, self.code))
        status = self.status or status
        detail = (self.detail_en if lang == "en" and self.detail_en else self.detail) or (
            title_en if lang == "en" else title_zh
        )
        if self.code == "not_found" and self.field is None:
            # No existence oracle: an object out of the reader's scope and one that does not
            # exist answer the same bytes (no kind, no id: the path already names them).
            detail = title_en if lang == "en" else title_zh
        body: dict[str, Any] = {
            "type": f"urn:wangge:problem:{self.code}",
            "title": title_en if lang == "en" else title_zh,
            "status": status,
            "code": self.code,
            "detail": detail,
        }
        if instance:
            body["instance"] = instance
        if self.field is not None:
            body["field"] = self.field
        if self.errors:
            body["errors"] = [e.render(lang) for e in self.errors]
        body.update(self.extra)
        return body

    @property
    def http_status(self) -> int:
        return self.status or CATALOG.get(self.code, (400,))[0]


def not_found(what_zh: str, what_en: str, ident: object) -> ApiError:
    """404 `not_found`. The answer's detail is the same for every object (`ApiError.body`):
    what and which are kept here for the server's own use only."""
    return ApiError(
        "not_found",
        detail=f"{what_zh}不存在：{ident}",
        detail_en=f"{what_en} not found: {ident}",
    )


def problem_response(request: Request, err: ApiError) -> FastJSON:
    lang = negotiate(request.headers.get("accept-language"))
    body = err.body(lang, instance=request.url.path)
    # the id the request context gave this request (app.observability): an operator quotes it
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    return FastJSON(
        body,
        status_code=err.http_status,
        media_type=PROBLEM_JSON,
        headers=err.headers or None,
    )


# pydantic error type -> (Chinese, English) message used when the field is at fault
_PYDANTIC_ZH: dict[str, str] = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "应为整数",
    "float_parsing": "应为数字",
    "finite_number": "应为有限数字",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "datetime_parsing": "时间格式不正确（应为 ISO 8601）",
    "datetime_from_date_parsing": "时间格式不正确（应为 ISO 8601）",
    "bool_parsing": "应为布尔值",
    "bool_type": "应为布尔值（true 或 false）",
    "model_attributes_type": "应为对象",
    "dict_type": "应为 JSON 对象",
    "list_type": "应为数组",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "float_type": "应为数字",
    "too_short": "元素过少",
    "too_long": "元素过多",
    "value_error": "取值无效",
    "control_character": "含有不允许的控制字符或双向控制字符",
    "time_out_of_range": "日期超出允许范围（2000–2100 年）",
    "integer_format": "应为十进制整数（不带符号、前导零、空格或下划线）",
}


def _field_name(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or None


def validation_problem(exc: RequestValidationError) -> ApiError:
    errors = []
    for e in exc.errors():
        if e.get("type") == "json_invalid":
            return ApiError(
                "malformed_json",
                detail=f"请求体不是有效的 JSON：{e.get('ctx', {}).get('error', '')}",
                detail_en=f"The body is not valid JSON: {e.get('ctx', {}).get('error', '')}",
            )
        loc = tuple(e.get("loc", ()))
        etype = str(e.get("type", "value_error"))
        en = str(e.get("msg", "invalid"))
        zh = _PYDANTIC_ZH.get(etype, "取值无效")
        errors.append(
            FieldError(
                field=_field_name(loc),
                code=etype,
                message=f"{zh}（{en}）" if etype not in _PYDANTIC_ZH else zh,
                message_en=en,
                extra={"in": str(loc[0])} if loc else None,  # type: ignore[arg-type]
            )
        )
    first = errors[0] if errors else None
    return ApiError(
        "validation_error",
        detail=f"{first.field or '请求'}：{first.message}" if first else None,
        detail_en=f"{first.field or 'request'}: {first.message_en}" if first else None,
        field=first.field if first else None,
        errors=errors,
    )


def _sqlstate(exc: DBAPIError) -> str:
    for e in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if code:
            return str(code)
    return ""


def database_problem(
    state: str, message: str, constraint: str | None = None, lost: bool = False
) -> ApiError | None:
    """What a database error means for the client, whichever way it came (SQLAlchemy's DBAPIError
    or the raw asyncpg driver on the hot paths); None: a bug of ours (500).

    - lost connection (08), the server shutting down or starting up (57P0x), out of connections
      (53): the database is unavailable, retry (503);
    - the statement timeout: 503 `query_timeout`;
    - input no route checked (a number out of range, an impossible date: 22; a broken rule: 23):
      the client's 422, a duplicate 409 — never a 500.
    """
    if "statement timeout" in message or "canceling statement" in message:
        return ApiError("query_timeout")
    if "no_district" in message:
        return ApiError("no_grids")
    if lost or state[:2] in ("08", "53") or state.startswith("57P"):
        return ApiError("database_unavailable", headers={"Retry-After": "5"})
    if state.startswith("22"):
        return ApiError(
            "validation_error",
            detail="某个取值超出范围或格式不正确",
            detail_en="A value is out of range or malformed",
        )
    if state == "23505":
        return ApiError("conflict")
    if state in ("23502", "23503", "23514", "23P01"):
        return ApiError(
            "validation_error",
            detail=f"数据不满足约束（{constraint or state}）",
            detail_en=f"The data breaks a rule ({constraint or state})",
        )
    return None


def _database_answer(request: Request, exc: Exception, err: ApiError | None) -> FastJSON:
    if err is None:
        log.exception("database error", exc_info=exc)
        return problem_response(request, ApiError("internal_error"))
    if err.code == "database_unavailable":
        log.warning("database unavailable: %s", exc)
    else:
        log.info("refused by the database: %s", exc)
    return problem_response(request, err)


def too_large(limit: int) -> ApiError:
    return ApiError(
        "payload_too_large",
        detail=f"请求体超过 {limit} 字节的上限",
        detail_en=f"The body exceeds the limit of {limit} bytes",
        extra={"limit_bytes": limit},
    )


class BodyTooLarge(StarletteHTTPException):
    """A request body over its limit (raised by `app.http.BodyLimitMiddleware`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413)
        self.limit = limit


def allowed_methods(request: Request) -> str:
    """Every method some route of the app answers at this path (Starlette's 405 names only the
    first route's: a path with its GET and its POST in two routes said `Allow: GET`)."""
    found: set[str] = set()
    scope = dict(request.scope)

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # an included router
                walk(route.original_router.routes)
                continue
            for method in getattr(route, "methods", None) or ():
                scope["method"] = method
                if route.matches(scope)[0] == Match.FULL:
                    found.add(method)

    walk(request.app.router.routes)
    return ", ".join(sorted(found))


def http_problem(request: Request, exc: StarletteHTTPException) -> ApiError:
    """The framework's own refusals (no route, a method not allowed, a body too large or that
    cannot be parsed) as our problem, for every door that answers them (the JSON handler below,
    the QR form's HTML page)."""
    if isinstance(exc, BodyTooLarge):
        return too_large(exc.limit)
    code = {404: "route_not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http_error"
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    err = ApiError(code, status=exc.status_code, headers=headers)
    if code == "http_error" and isinstance(exc.detail, str):
        err.detail = err.detail_en = exc.detail
    return err


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> FastJSON:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> FastJSON:
        return problem_response(request, validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> FastJSON:
        return problem_response(request, http_problem(request, exc))

    @app.exception_handler(OperationalError)
    @app.exception_handler(OSError)
    @app.exception_handler(PoolTimeout)
    async def _db_down(request: Request, exc: Exception) -> FastJSON:
        log.warning("database unavailable: %s", exc)
        return problem_response(
            request, ApiError("database_unavailable", headers={"Retry-After": "5"})
        )

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> FastJSON:
        cause = getattr(exc.orig, "__cause__", None)
        err = database_problem(
            _sqlstate(exc),
            str(exc.orig),
            getattr(cause, "constraint_name", None),
            lost=exc.connection_invalidated,
        )
        return _database_answer(request, exc, err)

    @app.exception_handler(asyncpg.PostgresError)
    async def _asyncpg(request: Request, exc: asyncpg.PostgresError) -> FastJSON:
        """The raw driver (case intake, tiles): the same answers as through SQLAlchemy."""
        err = database_problem(
            str(getattr(exc, "sqlstate", "") or ""), str(exc), getattr(exc, "constraint_name", None)
        )
        return _database_answer(request, exc, err)

    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(asyncpg.exceptions.InternalClientError)
    async def _asyncpg_closed(request: Request, exc: Exception) -> FastJSON:
        """The raw driver's connection is closed or broken under it: unavailable, retry."""
        return _database_answer(request, exc, database_problem("", str(exc), lost=True))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> FastJSON:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(request, ApiError("internal_error"))
