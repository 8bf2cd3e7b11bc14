"""/console: the built single-page console and its assets (public, cached, no path leaves the
assets folder). The browser test of the console itself is tests/e2e/test_console_browser.py."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from app.config import get_settings
from tests.helpers import problem


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "dist"
    (root / "assets" / "abc123" / "vendor").mkdir(parents=True)
    (root / "index.html").write_text('<!doctype html><script src="/console/assets/abc123/app.js">')
    (root / "assets" / "abc123" / "app.js").write_text("export const x = 1;\n")
    (root / "assets" / "abc123" / "style.css").write_text("body{}\n")
    (root / "assets" / "abc123" / "app.js.gz").write_bytes(gzip.compress(b"export const x = 1;\n"))
    (root / "assets" / "abc123" / "vendor" / "maplibre-gl.mjs").write_text("export {};\n")
    (tmp_path / "secret.js").write_text("secret")
    (root / "assets" / "abc123" / "link.js").symlink_to(tmp_path / "secret.js")
    monkeypatch.setattr(get_settings(), "console_dir", str(root))
    return root


async def test_page_is_served_uncached_with_a_strict_policy(anon: httpx.AsyncClient, dist) -> None:
    r = await anon.get("/console")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "/console/assets/abc123/app.js" in r.text


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("abc123/app.js", "text/javascript; charset=utf-8"),
        ("abc123/style.css", "text/css; charset=utf-8"),
        ("abc123/vendor/maplibre-gl.mjs", "text/javascript; charset=utf-8"),
    ],
)
async def test_assets_have_their_type_and_are_cached_for_a_year(
    anon: httpx.AsyncClient, dist, name: str, ctype: str
) -> None:
    r = await anon.get(f"/console/assets/{name}", params={"v": "6.17.0"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == ctype
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "connect-src 'self'" in r.headers["content-security-policy"]  # binds the map's worker
    assert r.content == (dist / "assets" / name).read_bytes()


@pytest.mark.parametrize(
    ("accept", "compressed"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("identity", False),
    ],
)
async def test_scripts_go_compressed_to_who_accepts_gzip(
    anon: httpx.AsyncClient, dist, accept: str, compressed: bool
) -> None:
    r = await anon.get("/console/assets/abc123/app.js", headers={"Accept-Encoding": accept})
    assert r.status_code == 200
    assert r.headers["vary"] == "Accept-Encoding"
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert (r.headers.get("content-encoding") == "gzip") == compressed
    assert r.content == b"export const x = 1;\n"  # httpx decodes the gzip body
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_a_compressed_copy_is_not_an_asset(anon: httpx.AsyncClient, dist) -> None:
    r = await anon.get("/console/assets/abc123/app.js.gz")
    problem(r, 404, "asset_not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/console/assets/abc123/missing.js",
        "/console/assets/abc123/%2e%2e/%2e%2e/index.html",
        "/console/assets/..%2F..%2Fsecret.js",
        "/console/assets/abc123/..%2F..%2F..%2Fsecret.js",
        "/console/assets/%2Fetc%2Fpasswd.js",
        "/console/assets/abc123/.hidden.js",
        "/console/assets/abc123/link.js",  # a symlink out of the folder
        "/console/assets/abc123/app.py",  # not a type the console serves
        "/console/assets/abc123",
    ],
)
async def test_no_path_leaves_the_assets(anon: httpx.AsyncClient, dist, path: str) -> None:
    r = await anon.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] in ("asset_not_found", "route_not_found")


async def test_unbuilt_console_says_how_to_build_it(
    anon: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "console_dir", str(tmp_path / "nothing"))
    r = await anon.get("/console")
    problem(r, 503, "console_not_built")
    assert "make console" in r.json()["detail"]
