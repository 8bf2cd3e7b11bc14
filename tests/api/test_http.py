"""Health, problem details, body limits, content types, language."""

from __future__ import annotations

import httpx

from tests.helpers import problem


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["postgis"].startswith("3.")
    from app.migrate import head_revision

    assert body["revision"] == head_revision()


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    problem(await client.get("/api/v1/nowhere"), 404, "route_not_found")
    problem(await client.put("/api/v1/grids/lookup"), 405, "method_not_allowed")


async def test_validation_error_names_the_field(client: httpx.AsyncClient) -> None:
    body = problem(
        await client.get("/api/v1/grids/lookup?lon=abc&lat=28.2"), 422, "validation_error"
    )
    assert body["field"] == "lon"
    assert body["errors"][0]["in"] == "query"


async def test_unknown_body_fields_are_rejected(client: httpx.AsyncClient, demo) -> None:
    r = await client.post(
        "/api/v1/areas",
        json={
            "level": "street",
            "code": "360602555000",
            "name": "x",
            "parent_id": demo["360602000000"],
            "id": 5,
        },
    )
    body = problem(r, 422, "validation_error")
    assert body["errors"][0]["field"] == "id"
    assert body["errors"][0]["code"] == "extra_forbidden"


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/areas", content=b"level=street", headers={"content-type": "text/plain"}
    )
    problem(r, 415, "unsupported_media_type")
    r = await client.post(
        "/api/v1/grids/import", content=b"<xml/>", headers={"content-type": "application/xml"}
    )
    problem(r, 415, "unsupported_media_type")


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/areas",
        content=b'{"level": "street",',
        headers={"content-type": "application/json"},
    )
    problem(r, 400, "malformed_json")
    r = await client.post(
        "/api/v1/grids/import", content=b"{nope", headers={"content-type": "application/geo+json"}
    )
    problem(r, 400, "malformed_json")


async def test_ten_megabyte_body_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    for path in ("/api/v1/areas", "/api/v1/grids/import"):
        r = await client.post(path, content=big, headers={"content-type": "application/json"})
        body = problem(r, 413, "payload_too_large")
        assert body["limit_bytes"] < len(big)


async def test_body_over_limit_without_content_length_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = await client.post(
        "/api/v1/areas", content=chunks(), headers={"content-type": "application/json"}
    )
    problem(r, 413, "payload_too_large")


async def test_english_on_request(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/grids/999999999", headers={"accept-language": "en-US,en;q=0.9"})
    body = problem(r, 404, "not_found")
    assert body["title"] == "Not found"
    assert body["detail"] == "Not found"  # no kind, no id (issue 17: no existence oracle)
    r = await client.get("/api/v1/grids/999999999")
    assert problem(r, 404, "not_found")["title"] == "资源不存在"


def test_language_negotiation() -> None:
    from app.i18n import negotiate

    assert negotiate(None) == "zh"
    assert negotiate("en") == "en"
    assert negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert negotiate("fr-FR, en;q=0.5") == "en"
    assert negotiate("de") == "zh"
