"""The committed openapi.yaml is the app's live schema."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_openapi_yaml_matches_the_app() -> None:
    from app.openapi_dump import render

    committed = (ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(committed) == yaml.safe_load(render()), (
        "openapi.yaml is stale: run `make openapi` and commit it"
    )


def test_every_route_uses_the_api_route_class() -> None:
    from app.http import ApiRoute, api_routes
    from app.main import app

    routes = api_routes(app.routes)
    assert len(routes) > 30
    for route in routes:
        assert isinstance(route, ApiRoute), route.path_format


def test_a_route_without_a_policy_cannot_be_built() -> None:
    import pytest
    from fastapi import APIRouter

    from app.http import ApiRoute

    router = APIRouter(route_class=ApiRoute)
    with pytest.raises(RuntimeError, match="must declare exactly one policy"):

        @router.get("/forgotten")
        async def forgotten() -> dict[str, str]:
            return {}
