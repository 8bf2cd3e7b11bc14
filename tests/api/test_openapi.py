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
    from fastapi.routing import APIRoute

    from app.http import ApiRoute
    from app.main import app

    for route in app.routes:
        if isinstance(route, APIRoute):
            assert isinstance(route, ApiRoute), route.path
