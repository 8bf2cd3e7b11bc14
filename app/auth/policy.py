"""The one authorisation policy layer. Every route declares a permission; this module decides.

- `RULES` says which roles hold each permission and whether it is scoped to places.
- `require("perm")` is the route dependency: it authenticates the bearer token, checks the role
  (403 when the role may never do it) and, for a scoped permission with an object in the path,
  checks that the object lies in the caller's scope (404 otherwise: do not reveal it exists).
- `ApiRoute` refuses to build a route that has no policy, and the matrix test walks the route table.

Places are scoped by the area tree: a post on an area covers that area and everything below it;
a grid worker's or leader's post covers its grids. Reference data (the registry of areas, grids,
buildings and departments) is readable by every signed-in user; writes and reports are scoped.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record

# The policy table (who holds each permission) lives in `app.auth.rules`, the bearer tokens in
# `app.auth.tokens`; both are re-exported here, the one module routes import.
from app.auth.rules import (  # noqa: F401 (re-exported)
    ALL_ROLES,
    AREA_STAFF,
    CASE_STAFF,
    RULES,
    Rule,
)
from app.auth.scope import PATH_OBJECTS, area_in_scope, covers, object_chain
from app.auth.tokens import (  # noqa: F401 (re-exported)
    ALGORITHM,
    PERSONAL,
    SIGNED,
    create_access_token,
    decode_access_token,
    parse_signed,
    signed_matches,
    token_digest,
)
from app.config import get_settings
from app.db import DbSession, HotFactory, short_transaction, standalone
from app.errors import ApiError, not_found
from app.http import policy_of  # noqa: F401 (where the route table reads the marks)
from app.ratelimit import check, limits_for
from app.schemas import MAX_ID


@dataclass(frozen=True)
class PostScope:
    id: int
    role: str
    area_id: int | None
    department_id: int | None
    grid_ids: frozenset[int]


@dataclass
class Principal:
    user_id: int
    username: str
    display_name: str
    session_id: uuid.UUID
    """The login session, or for a personal API token the token's id."""
    posts: list[PostScope] = field(default_factory=list)
    token_scope: str | None = None
    """None for a login; `read` or `map` for a personal API token (read-only: GET and HEAD)."""

    @property
    def roles(self) -> set[str]:
        return {p.role for p in self.posts}

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def posts_for(self, rule: Rule) -> list[PostScope]:
        return [p for p in self.posts if rule.roles is None or p.role in rule.roles]

    def area_roots(self, rule: Rule) -> set[int] | None:
        """Area ids under which `rule` lets the caller act; None = everywhere (admin)."""
        posts = self.posts_for(rule)
        if any(p.role == "admin" for p in posts):
            return None
        return {p.area_id for p in posts if p.area_id is not None}

    def grid_roots(self, rule: Rule) -> set[int]:
        return {g for p in self.posts_for(rule) for g in p.grid_ids}


# --- loading the caller: one indexed query, cached for at most auth_cache_seconds --------------

_POSTS = """
           coalesce(json_agg(json_build_object(
               'id', p.id, 'role', p.role, 'area_id', p.area_id, 'department_id', p.department_id,
               'grid_ids', (SELECT coalesce(json_agg(pg.grid_id), '[]') FROM post_grids pg
                            WHERE pg.post_id = p.id)
           ) ORDER BY p.id) FILTER (WHERE p.id IS NOT NULL), '[]') AS posts"""
_CURRENT_POSTS = """
    LEFT JOIN posts p ON p.user_id = u.id AND p.starts_on <= current_date
                     AND (p.ends_on IS NULL OR p.ends_on >= current_date)"""

_PRINCIPAL = text(
    "SELECT u.id, u.username, u.display_name,"
    + _POSTS
    + """
    FROM users u
    JOIN auth_sessions s ON s.id = :sid AND s.user_id = u.id"""
    + _CURRENT_POSTS
    + """
    WHERE u.id = :uid AND u.is_active AND s.revoked_at IS NULL AND s.expires_at > now()
    GROUP BY u.id
    """
)

_TOKEN_PRINCIPAL = (
    """
    SELECT u.id, u.username, u.display_name, t.id AS token_id, t.scope, t.token_hash,
           (t.last_used_at IS NULL OR t.last_used_at < now() - interval '5 minutes') AS stale,
"""
    + _POSTS
    + """
    FROM api_tokens t
    JOIN users u ON u.id = t.user_id"""
    + _CURRENT_POSTS
    + """
    WHERE {key} AND t.revoked_at IS NULL AND t.expires_at > now() AND u.is_active
    GROUP BY u.id, t.id
    """
)
_BY_HASH = text(_TOKEN_PRINCIPAL.format(key="t.token_hash = :h"))
_BY_ID = text(_TOKEN_PRINCIPAL.format(key="t.id = :id"))
_USED = text("UPDATE api_tokens SET last_used_at = now() WHERE id = :id")


class _Cache:
    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.items: OrderedDict[uuid.UUID, tuple[float, Principal]] = OrderedDict()

    def get(self, sid: uuid.UUID) -> Principal | None:
        hit = self.items.get(sid)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, p: Principal, key: uuid.UUID | None = None) -> None:
        ttl = get_settings().auth_cache_seconds
        if ttl <= 0:
            return
        key = key or p.session_id
        self.items[key] = (time.monotonic() + ttl, p)
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    def evict(self, sid: uuid.UUID | None = None, user_id: int | None = None) -> None:
        if sid is not None:
            self.items.pop(sid, None)
        if user_id is not None:
            for k in [k for k, (_, p) in self.items.items() if p.user_id == user_id]:
                self.items.pop(k, None)

    def clear(self) -> None:
        self.items.clear()


principal_cache = _Cache()


async def load_principal(session: AsyncSession, user_id: int, sid: uuid.UUID) -> Principal:
    cached = principal_cache.get(sid)
    if cached is not None and cached.user_id == user_id:
        return cached
    async with short_transaction(session):
        row = (
            await (await session.connection()).execute(_PRINCIPAL, {"uid": user_id, "sid": sid})
        ).first()
    if row is None:
        raise ApiError(
            "invalid_token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    p = _principal(row, sid, None)
    principal_cache.put(p)
    return p


def _principal(row: Any, sid: uuid.UUID, token_scope: str | None) -> Principal:
    return Principal(
        user_id=row.id,
        username=row.username,
        display_name=row.display_name,
        session_id=sid,
        posts=[
            PostScope(
                id=x["id"],
                role=x["role"],
                area_id=x["area_id"],
                department_id=x["department_id"],
                grid_ids=frozenset(x["grid_ids"]),
            )
            for x in row.posts
        ],
        token_scope=token_scope,
    )


token_cache = _Cache()
"""Principals of personal API tokens, keyed by a digest of the credential as presented."""

MAP_PATHS = ("/tiles/", "/ogc")
"""What a `map` token and every signed URL may read."""


async def load_token_principal(session: AsyncSession, credential: str) -> Principal:
    """The owner of a personal API token (`wgp_…`) or of its signed URL form (`wgs_…`), which
    reads the map only. 401 when unknown, forged, revoked, expired or of a disabled account."""
    digest = token_digest(credential)
    key = uuid.UUID(digest[:32])
    cached = token_cache.get(key)
    if cached is not None:
        return cached
    signed = parse_signed(credential) if credential.startswith(SIGNED) else None
    async with short_transaction(session):
        conn = await session.connection()
        if signed is not None:
            row = (await conn.execute(_BY_ID, {"id": signed[0]})).first()
            if row is not None and not signed_matches(row.token_id, row.token_hash, signed[1]):
                row = None
        elif credential.startswith(PERSONAL):
            row = (await conn.execute(_BY_HASH, {"h": digest})).first()
        else:
            row = None
        if row is not None and row.stale:
            await conn.execute(_USED, {"id": row.token_id})
    if row is None:
        raise ApiError(
            "invalid_token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    p = _principal(row, row.token_id, "map" if signed is not None else row.scope)
    token_cache.put(p, key)
    return p


def _route_path(request: Request) -> str:
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def authenticate(request: Request, session: AsyncSession, token: str) -> Principal:
    """The caller of a bearer credential: an access token of a login, or a personal API token
    (read-only: GET and HEAD; a `map` token or signed URL: the tiles and OGC API only)."""
    if token.startswith((PERSONAL, SIGNED)):
        who = await load_token_principal(session, token)
        if request.method not in ("GET", "HEAD"):
            raise ApiError("read_only_token")
        if who.token_scope == "map" and not _route_path(request).startswith(MAP_PATHS):
            raise ApiError("token_scope")
    else:
        user_id, sid = decode_access_token(token)
        who = await load_principal(session, user_id, sid)
    request.state.principal = who
    return who


# --- the route dependency -----------------------------------------------------------------------

bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def record_denial(
    session: AsyncSession,
    request: Request,
    who: Principal | None,
    permission: str,
    reason: str,
    obj: tuple[str, int] | None = None,
) -> None:
    """The refusal is audited in a short transaction of its own, which the request's rollback
    (it ends in 403/404) does not undo."""
    async with standalone(session) as own:
        await _record_denial(own, request, who, permission, reason, obj)


async def _record_denial(
    session: AsyncSession,
    request: Request,
    who: Principal | None,
    permission: str,
    reason: str,
    obj: tuple[str, int] | None,
) -> None:
    await record(
        session,
        "permission_denied",
        actor=who,
        request=request,
        object_type=obj[0] if obj else None,
        object_id=str(obj[1]) if obj else None,
        detail={
            "permission": permission,
            "reason": reason,
            "method": request.method,
            "path": request.url.path,
        },
    )


def require(permission: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    rule = RULES[permission]

    if rule.api_key:
        return _api_key_policy(permission)

    if rule.roles is None:
        # Public: nothing to resolve (no session, no token parsing) on the hot public paths.
        async def public() -> None:
            return None

        public.__policy__ = permission  # type: ignore[attr-defined]
        return public

    async def policy(
        request: Request,
        session: DbSession,
        token: Annotated[str | None, Depends(bearer)],
    ) -> Principal | None:
        return await _authorise(request, session, token)

    async def limited_policy(
        request: Request,
        session: DbSession,
        token: Annotated[str | None, Depends(bearer)],
        connect: HotFactory,
    ) -> Principal | None:
        who = await _authorise(request, session, token)
        if who is not None and rule.rate is not None:
            # After the role check (a refused caller costs nothing) and before the work.
            await check(connect, limits_for(rule.rate, request, who.user_id), batched=True)
        return who

    async def _authorise(
        request: Request, session: AsyncSession, token: str | None
    ) -> Principal | None:
        if not token:
            raise ApiError("unauthenticated", headers={"WWW-Authenticate": "Bearer"})
        who = await authenticate(request, session, token)
        if not who.posts_for(rule):
            await record_denial(session, request, who, permission, "role")
            raise ApiError(
                "forbidden",
                detail=f"当前岗位无权执行此操作（{permission}）",
                detail_en=f"None of your posts allows this ({permission})",
            )
        if rule.scoped:
            for kind in PATH_OBJECTS:
                if kind in request.path_params:
                    try:
                        oid = int(request.path_params[kind])
                    except ValueError:
                        break  # the framework answers 422 for the malformed id
                    if not 0 < oid <= MAX_ID:
                        break  # out of range: the same 422, never a query
                    found, chain, grid_id, owner, depts = await object_chain(session, kind, oid)
                    if found and not covers(who, rule, chain, grid_id, owner, depts):
                        await record_denial(session, request, who, permission, "scope", (kind, oid))
                        raise ApiError(
                            "not_found", detail=f"对象不存在：{oid}", detail_en=f"Not found: {oid}"
                        )
        return who

    chosen = limited_policy if rule.rate is not None else policy
    chosen.__policy__ = permission  # type: ignore[attr-defined,union-attr]
    return chosen


KeyVerifier = Callable[[AsyncSession, str | None], Coroutine[Any, Any, Any]]
"""Who holds this API key (None when missing, unknown or revoked)."""

_key_verifiers: dict[str, KeyVerifier] = {}


def register_key_verifier(permission: str, verify: KeyVerifier) -> None:
    """An extension point, registered from above (`app.extensions`): the read model that issues
    API keys (Open311) tells the policy how to check them. The policy imports no domain."""
    assert RULES[permission].api_key, permission
    _key_verifiers[permission] = verify


def _api_key_policy(permission: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    """An integrator's key (query or form field `api_key`), checked by the verifier registered
    for the permission (`app.open311.keys.verify_key`): 403 `invalid_api_key` when missing,
    unknown or revoked."""

    async def policy(request: Request, session: DbSession) -> Any:
        verify_key = _key_verifiers.get(permission)
        if verify_key is None:
            raise RuntimeError(f"no API-key verifier registered for {permission}")
        key = request.query_params.get("api_key")
        ctype = (request.headers.get("content-type") or "").lower()
        if key is None and ctype.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            value = (await request.form()).get("api_key")
            key = value if isinstance(value, str) else None
        who = await verify_key(session, key)
        if who is None:
            raise ApiError("invalid_api_key", field="api_key")
        request.state.integrator = who
        return who

    policy.__policy__ = permission  # type: ignore[attr-defined]
    return policy


def optional(permission: str) -> Callable[..., Coroutine[Any, Any, Principal | None]]:
    """For a public permission whose answer depends on who asks: None without a token, the
    caller with a valid one; a bad or expired token is refused (401), never silently ignored."""
    assert RULES[permission].roles is None

    async def maybe(
        request: Request,
        session: DbSession,
        token: Annotated[str | None, Depends(bearer)],
    ) -> Principal | None:
        if not token:
            return None
        return await authenticate(request, session, token)

    maybe.__policy__ = permission  # type: ignore[attr-defined]
    return maybe


Public = Annotated[None, Depends(require("public"))]
StreamTicket = Annotated[None, Depends(require("events:stream"))]
MapReader = Annotated[Principal | None, Depends(optional("map:read"))]
SignedIn = Annotated[Principal, Depends(require("signed_in"))]
RegistryReader = Annotated[Principal, Depends(require("registry:read"))]
RegistryReporter = Annotated[Principal, Depends(require("registry:report"))]
RegistryWriter = Annotated[Principal, Depends(require("registry:write"))]
BuildingWriter = Annotated[Principal, Depends(require("buildings:write"))]
StaffReader = Annotated[Principal, Depends(require("staff:read"))]
UserAdmin = Annotated[Principal, Depends(require("users:admin"))]
CatalogueWriter = Annotated[Principal, Depends(require("catalogue:write"))]
CaseReporter = Annotated[Principal, Depends(require("cases:report"))]
CaseReader = Annotated[Principal, Depends(require("cases:read"))]
CaseWorker = Annotated[Principal, Depends(require("cases:work"))]
CasePlacer = Annotated[Principal, Depends(require("cases:place"))]
WebhookManager = Annotated[Principal, Depends(require("webhooks:manage"))]
WebhookMonitor = Annotated[Principal, Depends(require("webhooks:monitor"))]
DepartmentWriter = Annotated[Principal, Depends(require("departments:write"))]
AuditReader = Annotated[Principal, Depends(require("audit:read"))]
Open311Public = Annotated[None, Depends(require("open311:public"))]
Open311Submitter = Annotated[Any, Depends(require("open311:submit"))]
"""An `app.open311.keys.Integrator` (typed Any here: the policy layer does not import it)."""
Open311KeyAdmin = Annotated[Principal, Depends(require("open311:keys"))]
CommunityReader = Annotated[Principal, Depends(require("community:read"))]
CommunityManager = Annotated[Principal, Depends(require("community:manage"))]
CommunityRater = Annotated[Principal, Depends(require("community:rate"))]
CommunityCollector = Annotated[Principal, Depends(require("community:collect"))]
CommunityDepartment = Annotated[Principal, Depends(require("community:department"))]
SupportReader = Annotated[Principal, Depends(require("support:read"))]
SupportPublisher = Annotated[Principal, Depends(require("support:publish"))]
StatsReader = Annotated[Principal, Depends(require("stats:read"))]
StatsConfigurer = Annotated[Principal, Depends(require("stats:configure"))]
DutyReader = Annotated[Principal, Depends(require("duty:read"))]
DutyManager = Annotated[Principal, Depends(require("duty:manage"))]
OwnWork = Annotated[Principal, Depends(require("tasks:mine"))]
TaskAssigner = Annotated[Principal, Depends(require("tasks:assign"))]
TaskReader = Annotated[Principal, Depends(require("tasks:read"))]
TaskApprover = Annotated[Principal, Depends(require("tasks:approve"))]
AdmissionReader = Annotated[Principal, Depends(require("admission:read"))]
AdmissionManager = Annotated[Principal, Depends(require("admission:manage"))]


async def ensure_area_in_scope(
    session: AsyncSession, who: Principal | None, permission: str, area_id: int
) -> bool:
    """For objects named in a body (a parent, a community): may the caller act there?"""
    return await area_in_scope(session, who, RULES[permission], area_id)


async def area_or_404(
    session: AsyncSession, who: Principal, permission: str, area_id: int
) -> list[int]:
    """An area named in a query (`area_id=`) that `permission` lets the caller read: its chain
    (the area and every area above it). A missing area and one out of scope answer the same
    404 (no existence oracle)."""
    found, chain, _, _, _ = await object_chain(session, "area_id", area_id)
    if not found or not covers(who, RULES[permission], chain):
        raise not_found("区域", "Area", area_id)
    return chain


PatrolWorker = Annotated[Principal, Depends(require("patrols:field"))]
PatrolReader = Annotated[Principal, Depends(require("patrols:read"))]
FieldRecorder = Annotated[Principal, Depends(require("fieldwork:record"))]
FieldReader = Annotated[Principal, Depends(require("fieldwork:read"))]
CheckpointManager = Annotated[Principal, Depends(require("checkpoints:manage"))]
CoverageReader = Annotated[Principal, Depends(require("coverage:read"))]
WorklogReader = Annotated[Principal, Depends(require("worklog:read"))]
LivePositionReader = Annotated[Principal, Depends(require("positions:live"))]
BasedataReader = Annotated[Principal, Depends(require("basedata:read"))]
BasedataWriter = Annotated[Principal, Depends(require("basedata:write"))]
BasedataEraser = Annotated[Principal, Depends(require("basedata:erase"))]
BasedataCatalogue = Annotated[Principal, Depends(require("basedata:catalogue"))]
DisputeReader = Annotated[Principal, Depends(require("disputes:read"))]
DisputeWorker = Annotated[Principal, Depends(require("disputes:work"))]
