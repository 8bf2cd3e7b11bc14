"""BENCH ONLY, never serve it: the app with the registry:read policy replaced by a fixed principal.

bench/bench_auth.py serves this as its no-auth variant (``uvicorn --app-dir bench
_noauth_app:app``): `app.main.app`, the same code on every request, except that GET
/api/v1/grids gets a fixed principal instead of running its registry:read policy (no token, no
principal lookup, no cache). Two ways, chosen by WANGGE_BENCH_NOAUTH:

* ``annotation`` (default): `app.auth.policy.RegistryReader` is rebound to a dependency on
  `fixed_principal` before the routers are imported (they bind it at import), so FastAPI solves
  the route exactly as usual, one dependency swapped.
* ``overrides``: ``app.dependency_overrides[policy] = fixed_principal``, the policy callable
  found through its ``__policy__`` attribute in the route's dependency tree. Beware: as soon as
  that dict is non-empty, FastAPI (0.165) rebuilds the dependant of *every* sub-dependency of
  *every* request (``get_dependant`` in ``solve_dependencies``), which costs more than auth
  itself; this makes the no-auth variant the slowest one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

import app.auth.policy as policy_module
from app.auth.policy import PostScope, Principal

PATH = "/api/v1/grids"
PERMISSION = "registry:read"
MODE = os.environ.get("WANGGE_BENCH_NOAUTH", "annotation")
if MODE not in ("annotation", "overrides"):
    raise RuntimeError(f"WANGGE_BENCH_NOAUTH must be annotation or overrides, not {MODE!r}")

FIXED = Principal(
    user_id=0,
    username="bench",
    display_name="bench",
    session_id=uuid.UUID(int=0),
    posts=[
        PostScope(id=0, role="grid_worker", area_id=None, department_id=None, grid_ids=frozenset())
    ],
)


async def fixed_principal(request: Request) -> Principal:
    request.state.principal = FIXED  # as the policy does
    return FIXED


fixed_principal.__policy__ = PERMISSION  # type: ignore[attr-defined]  # ApiRoute wants one policy

if MODE == "annotation":
    policy_module.RegistryReader = Annotated[Principal, Depends(fixed_principal)]  # type: ignore[assignment]

from app.http import api_routes  # noqa: E402
from app.main import app  # noqa: E402


def find_policy(dependant: Any, permission: str) -> Callable[..., Any] | None:
    """The callable declaring `permission` anywhere in a route's dependency tree."""
    call = getattr(dependant, "call", None)
    if call is not None and getattr(call, "__policy__", None) == permission:
        return call  # type: ignore[no-any-return]
    for sub in getattr(dependant, "dependencies", []):
        found = find_policy(sub, permission)
        if found is not None:
            return found
    return None


def _policy() -> Callable[..., Any]:
    for route in api_routes(app.routes):  # through the included routers
        if route.path == PATH and "GET" in (route.methods or ()):
            policy = find_policy(route.dependant, PERMISSION)
            if policy is not None:
                return policy
            raise RuntimeError(f"GET {PATH} declares no {PERMISSION} policy")
    raise RuntimeError(f"no route GET {PATH}")


if MODE == "overrides":
    app.dependency_overrides[_policy()] = fixed_principal
elif _policy() is not fixed_principal:
    raise RuntimeError(f"GET {PATH} still runs its {PERMISSION} policy: imported too early?")

__all__ = ["app"]
