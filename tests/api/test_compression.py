"""Compression (issue 22): zstd, brotli or gzip by the client's Accept-Encoding, for JSON, GeoJSON,
problem+json and vector tiles over `WANGGE_COMPRESS_MIN_BYTES`; the decoded body is the
uncompressed one byte for byte; ETags and 304s unchanged; small answers, the live stream and
the builds that are already gzipped are left alone."""

from __future__ import annotations

import gzip

import brotli
import mercantile
import pytest
import zstandard

from tests.factories import point_in_grid

GRID = "360602001001001"
DECODE = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
}


async def _raw(anon, url: str, encoding: str, **headers: str):  # type: ignore[no-untyped-def]
    """The answer as sent (not decoded by httpx): status, headers, body bytes."""
    async with anon.stream("GET", url, headers={"Accept-Encoding": encoding, **headers}) as r:
        body = b"".join([chunk async for chunk in r.aiter_raw()])
    return r, body


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
async def test_json_and_geojson_are_compressed_for_clients_that_accept_it(
    anon, as_user, encoding
) -> None:
    for url in ("/api/v1/grids?limit=200", "/api/v1/categories", "/openapi.json"):
        plain, plain_body = await _raw(anon, url, "identity", **as_user("admin"))
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        r, body = await _raw(anon, url, encoding, **as_user("admin"))
        assert r.status_code == 200
        assert r.headers["content-encoding"] == encoding, url
        assert "accept-encoding" in r.headers["vary"].lower()
        assert DECODE[encoding](body) == plain_body, url
        assert len(body) < len(plain_body) / 2, (url, len(body), len(plain_body))


async def test_the_server_prefers_zstd_then_brotli_then_gzip(anon, as_user) -> None:
    for accept, chosen in (
        ("gzip, br, zstd", "zstd"),
        ("gzip, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip", "gzip"),
    ):
        r, _ = await _raw(anon, "/api/v1/categories", accept, **as_user("admin"))
        assert r.headers.get("content-encoding") == chosen, accept


async def test_tiles_keep_their_etag_and_304(anon, conn) -> None:
    lon, lat = await point_in_grid(conn, GRID)
    t = mercantile.tile(lon, lat, 14)
    url = f"/tiles/grids/14/{t.x}/{t.y}.mvt"
    plain, plain_body = await _raw(anon, url, "identity")
    r, body = await _raw(anon, url, "gzip")
    assert r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == plain_body
    assert r.headers["etag"] == plain.headers["etag"]
    again, empty = await _raw(anon, url, "gzip", **{"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and empty == b""
    assert "content-encoding" not in again.headers


async def test_small_answers_and_problems_under_the_threshold_stay_plain(anon) -> None:
    r, body = await _raw(anon, "/healthz", "gzip, br, zstd")
    assert r.status_code == 200 and "content-encoding" not in r.headers
    r, body = await _raw(anon, "/api/v1/cases/1", "gzip")
    assert r.status_code == 401 and "content-encoding" not in r.headers
    assert body.startswith(b"{")


async def test_already_gzipped_builds_are_not_compressed_twice(anon) -> None:
    page, html = await _raw(anon, "/console", "identity")
    assert page.status_code == 200
    asset = next(
        part.split('"', 1)[0]
        for part in html.decode().split('src="')[1:]
        if part.split('"', 1)[0].endswith(".js")
    )
    r, body = await _raw(anon, asset, "gzip, br, zstd")
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(body).lstrip()[:1] not in (b"\x1f",)  # one layer of gzip
