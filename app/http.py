"""HTTP plumbing shared by every router: the route class, body limits, JSON body reading."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path, PurePath
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.params import File, Form
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ApiError, BodyTooLarge, problem_response, too_large

__all__ = [
    "ApiRoute",
    "BodyLimitMiddleware",
    "BodyTooLarge",
    "policy_of",
    "query_parameters",
    "read_query",
    "too_large",
]

JSON_TYPES = ("application/json", "application/geo+json")


def is_json_content_type(value: str | None) -> bool:
    if not value:
        return False
    mt = value.split(";", 1)[0].strip().lower()
    return mt in JSON_TYPES or mt.endswith("+json")


def unsupported_media_type(got: str | None) -> ApiError:
    return ApiError(
        "unsupported_media_type",
        detail=f"请求体应为 application/json，收到的是 {got or '（无 Content-Type）'}",
        detail_en=f"The body must be application/json, got {got or '(no Content-Type)'}",
        field="Content-Type",
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ApiError(
                "validation_error",
                field=key,
                detail=f"JSON 对象中的键重复：{key}",
                detail_en=f"Duplicate key in a JSON object: {key}",
            )
        out[key] = value
    return out


def decode_json(raw: bytes) -> Any:
    """A JSON body, with a key given twice in one object refused (422 `validation_error`: which
    of the two a parser keeps differs, so a proxy and the service could read two bodies).
    ValueError when it is not JSON."""
    return json.loads(raw, object_pairs_hook=_no_duplicates)


def policy_of(dependant: Any) -> list[str]:
    """Permissions declared anywhere in a route's dependency tree (the policy layer marks its
    dependencies with `__policy__`; the kernel only reads the mark)."""
    found = []
    call = getattr(dependant, "call", None)
    if call is not None and hasattr(call, "__policy__"):
        found.append(call.__policy__)
    for sub in getattr(dependant, "dependencies", []):
        found.extend(policy_of(sub))
    return found


class DigitsConvertor(Convertor[str]):
    """A path segment that is an integer matches ASCII digits only, and stays text: the strict
    reading of its value (no leading zero, the range) is `app.schemas.strict_integer`'s, a 422
    naming the parameter. A segment with anything else in it names no object: the route does not
    match (`/grids/lookup` is not `/grids/{grid_id}`), so the path answers what it is (404, or
    405 with the `Allow` of the routes that do match)."""

    regex = "[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("digits", DigitsConvertor())


class ApiRoute(APIRoute):
    """Every route of the API uses this class.

    - It must declare exactly one permission of the policy layer (`app.auth.policy`, whose
      dependencies carry a `__policy__` mark), or the app refuses to start: a new route cannot
      forget its authorisation.
    - JSON bodies must say they are JSON (415 otherwise).
    - Integer path parameters match digits only (`DigitsConvertor`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        found = policy_of(self.dependant)
        if len(found) != 1:
            raise RuntimeError(
                f"route {sorted(self.methods or ())} {self.path} must declare exactly one policy "
                f"permission (found {found})"
            )
        self.permission = found[0]
        ints = [f.name for f in self.dependant.path_params if f.field_info.annotation is int]
        if ints:
            typed = re.sub(
                r"\{(\w+)\}", lambda m: f"{{{m[1]}:digits}}" if m[1] in ints else m[0], self.path
            )
            # FastAPI builds the routes an app matches from `path` (its prefix + this), so the
            # convertor lives there; `path_format` (and openapi.yaml) keep `{grid_id}`.
            self.path = typed
            self.path_regex, self.path_format, self.param_convertors = compile_path(typed)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        bf = self.body_field
        if bf is None or isinstance(bf.field_info, Form | File):
            return handler

        async def guarded(request: Request) -> Response:
            ctype = request.headers.get("content-type")
            if not is_json_content_type(ctype):
                return problem_response(request, unsupported_media_type(ctype))
            raw = await request.body()
            if raw:
                try:
                    # Decoded once here, with duplicate keys refused; FastAPI reads the result
                    # (Starlette keeps a request's decoded JSON in `_json`).
                    request._json = decode_json(raw)
                except ApiError as err:
                    return problem_response(request, err)
                except ValueError:
                    pass  # not JSON: FastAPI answers it (malformed_json)
            return await handler(request)

        return guarded


# --- a hot route's query string as one model ------------------------------------------------------
# FastAPI resolves each declared query parameter in Python on every request (the lookup's four
# and its language cost about 60 µs a request here: docs/benchmarks.md, "At the floor");
# pydantic-core validates a whole model in one call.
# A hot route that reads its query this way documents it with `query_parameters` (the same
# OpenAPI parameters FastAPI writes for declared ones) and answers bad input with the same 422.


M = TypeVar("M", bound=BaseModel)


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI parameter objects of a query model read by `read_query`, as FastAPI writes
    them for declared query parameters (for the route's `openapi_extra`)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    out = []
    for name, field in model.model_fields.items():
        param: dict[str, Any] = {
            "name": field.alias or name,
            "in": "query",
            "required": field.is_required(),
            "schema": schema["properties"][field.alias or name],
        }
        if field.description:
            param["description"] = field.description
        out.append(param)
    return out


def read_query(model: type[M], request: Request) -> M:
    """The request's query string validated as `model` in one pydantic-core call (the last value
    of a repeated parameter wins, as for FastAPI's declared parameters; unknown ones are
    ignored). Bad input raises FastAPI's own RequestValidationError, located in the query, so it
    becomes the same 422 `validation_error` problem with the field at fault."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as e:
        errors = [{**err, "loc": ("query", *err["loc"])} for err in e.errors(include_url=False)]
        raise RequestValidationError(errors) from None


_STRONG_VERSION = re.compile(r'"(0|[1-9][0-9]{0,17})"')


def if_match_version(value: str) -> int | None:
    """The version an `If-Match` names, by strong comparison only (RFC 9110 §8.8.3.2): exactly
    one entity-tag `"<n>"` as the ETag was sent. A weak tag (`W/"1"`), another spelling of the
    number (`"01"`, `"+1"`, `"¹"`), an unquoted value, `*` or a list: None (no match)."""
    found = _STRONG_VERSION.fullmatch(value.strip(" \t"))
    return int(found.group(1)) if found else None


async def read_json_body(request: Request) -> Any:
    """Read and decode a JSON body by hand (for endpoints that validate item by item)."""
    ctype = request.headers.get("content-type")
    if not is_json_content_type(ctype):
        raise unsupported_media_type(ctype)
    raw = await request.body()
    try:
        return decode_json(raw)
    except ValueError as e:
        raise ApiError(
            "malformed_json",
            detail=f"请求体不是有效的 JSON：{e}",
            detail_en=f"The body is not valid JSON: {e}",
        ) from None


def compression(app: ASGIApp, min_bytes: int, level: int) -> ASGIApp:
    """Answers compressed for clients that accept it (starlette-compress: zstd, brotli, gzip by
    the server's preference among those the client accepts), `Vary: Accept-Encoding` added. Not
    the live stream (each event is small, and a compressor per subscriber costs more than it
    saves), nor what is already encoded (the console's and the field app's gzipped builds)."""
    from starlette_compress import CompressMiddleware, add_compress_type, remove_compress_type

    for media_type in ("application/problem+json", "text/csv"):
        add_compress_type(media_type)
    remove_compress_type("text/event-stream")
    return CompressMiddleware(
        app,
        minimum_size=min_bytes,
        zstd_level=level,
        brotli_quality=level,
        gzip_level=level,
    )


class BodyLimitMiddleware:
    """Refuse request bodies over a size limit (413) before the app reads them into memory.

    Pure ASGI: no database, no buffering; counts bytes as they arrive so a missing or lying
    Content-Length does not help. On the paths that take large bodies (`token_first`: photo
    uploads, imports) a request without a valid bearer token is refused (401) as soon as its
    headers arrive: nothing of its body is read (an 80 MB declaration with 1 MB sent held the
    connection until the body came). `token_ok` checks the token's signature and expiry only
    (no database); the route's policy does the full check.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[str], int],
        token_first: Callable[[str, str], bool] = lambda method, path: False,
        token_ok: Callable[[str], bool] = lambda token: False,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.token_first = token_first
        self.token_ok = token_ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        authorization = b""
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._reject(scope, send, too_large(limit))
                    return
            elif name == b"authorization":
                authorization = value
        if self.token_first(scope["method"], scope["path"]):
            scheme, _, token = authorization.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not self.token_ok(token.strip()):
                await self._reject(
                    scope,
                    send,
                    ApiError(
                        "unauthenticated" if not authorization else "invalid_token",
                        headers={"WWW-Authenticate": "Bearer", "Connection": "close"},
                    ),
                )
                return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # The exception middleware renders it as payload_too_large problem+json.
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)

    async def _reject(self, scope: Scope, send: Send, err: ApiError) -> None:
        err.headers.setdefault("Connection", "close")  # the unread body ends the connection
        response = problem_response(Request(scope), err)
        await response(scope, _empty_receive, send)


HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""The policy of an HTML page that names none itself (e.g. the monthly report): no script, no
frame, nothing fetched but its own images."""


class HtmlSecurityHeadersMiddleware:
    """Every HTML answer carries the security headers: a Content-Security-Policy (the page's own,
    else `HTML_CSP`) that forbids framing (`frame-ancestors 'none'` is added when missing),
    `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and `Referrer-Policy:
    no-referrer`. One place for all pages, whichever router made them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {k.lower(): v for k, v in headers}
                ctype = names.get(b"content-type", b"")
                if ctype.startswith(b"text/html"):
                    csp = names.get(b"content-security-policy")
                    if csp is None:
                        headers.append((b"content-security-policy", HTML_CSP.encode()))
                    elif b"frame-ancestors" not in csp:
                        headers = [
                            (k, v) for k, v in headers if k.lower() != b"content-security-policy"
                        ]
                        headers.append(
                            (b"content-security-policy", csp + b"; frame-ancestors 'none'")
                        )
                    for name, value in (
                        (b"x-content-type-options", b"nosniff"),
                        (b"x-frame-options", b"DENY"),
                        (b"referrer-policy", b"no-referrer"),
                    ):
                        if name not in names:
                            headers.append((name, value))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, guarded_send)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _in(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in n for n in networks)


class ForwardedMiddleware:
    """The client's address and scheme behind reverse proxies, from configured proxies only.

    A request whose peer is one of `trusted` (the `trusted_proxies` setting; default none) has
    its client taken from `X-Forwarded-For`: the rightmost address that is not itself a trusted
    proxy (what a client writes to the left of it is a claim no proxy checked), and its scheme
    from `X-Forwarded-Proto`. From any other peer, loopback included, both headers are ignored:
    a forged address never reaches the audit log or keys a per-address limit.
    """

    def __init__(self, app: ASGIApp, trusted: list[Network]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            client = scope.get("client")
            if client and _in(client[0], self.trusted):
                forwarded, proto = b"", b""
                for name, value in scope.get("headers", ()):
                    if name == b"x-forwarded-for":
                        forwarded = forwarded + b"," + value if forwarded else value
                    elif name == b"x-forwarded-proto":
                        proto = value
                hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
                for hop in reversed(hops):
                    if not _in(hop, self.trusted):
                        try:
                            ipaddress.ip_address(hop.strip("[]"))
                        except ValueError:
                            break  # not an address: keep the proxy's own
                        scope = {**scope, "client": (hop.strip("[]"), 0)}
                        break
                scheme = proto.decode("latin-1").split(",")[-1].strip().lower()
                if scheme in ("http", "https"):
                    ws = scope["type"] == "websocket"
                    scope = {
                        **scope,
                        "scheme": ("wss" if scheme == "https" else "ws") if ws else scheme,
                    }
        await self.app(scope, receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute of an app or router, through included routers (the route table)."""
    out: list[APIRoute] = []
    for r in routes:
        if isinstance(r, APIRoute):
            out.append(r)
        elif hasattr(r, "original_router"):
            out.extend(api_routes(r.original_router.routes))
    return out


# --- the built web apps (console, field app): one way to serve a build's files ------------------


def page_headers(csp: str) -> dict[str, str]:
    """Headers of a web app's page (never cached: it names the current build's assets)."""
    return {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def asset_headers(csp: str) -> dict[str, str]:
    """Headers of a build's content-hashed file: cached for a year. The CSP is ignored for the
    page's own scripts but binds a worker (a worker's policy comes from its script's response)."""
    return {
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": csp,
        "Vary": "Accept-Encoding",
    }


def accepts_gzip(value: str) -> bool:
    """Does an `Accept-Encoding` value accept gzip (with a q above 0)?"""
    for part in value.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


def built_asset(
    request: Request,
    root: Path,
    asset: str,
    types: Mapping[str, str],
    pattern: re.Pattern[str],
    headers: Mapping[str, str],
    missing: ApiError,
) -> FileResponse:
    """A file of a web app's build under `root` (its `assets/` folder): the name must match the
    strict `pattern`, have a known type and resolve inside `root`, so no path leaves it; the
    gzip copy the build wrote goes to browsers that accept it. `missing` (a 404) otherwise."""
    suffix = PurePath(asset).suffix.lower()
    if not pattern.fullmatch(asset) or suffix not in types:
        raise missing
    root = root.resolve()
    path = (root / asset).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise missing
    gz = path.with_name(path.name + ".gz")
    if accepts_gzip(request.headers.get("accept-encoding", "")) and gz.is_file():
        return FileResponse(
            gz, media_type=types[suffix], headers={**headers, "Content-Encoding": "gzip"}
        )
    return FileResponse(path, media_type=types[suffix], headers=dict(headers))
