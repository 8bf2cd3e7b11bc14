"""/app: the built field app 网格通 — its page, service worker, manifest and assets (public, strict
CSP, cached by content hash, no path leaves the assets folder). The browser test of the app itself
is tests/e2e/test_field_app.py."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest

from app.config import get_settings
from tests.helpers import problem


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "dist"
    (root / "assets" / "abc123" / "vendor").mkdir(parents=True)
    (root / "index.html").write_text('<!doctype html><script src="/app/assets/abc123/app.js">')
    (root / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    (root / "manifest.webmanifest").write_text(json.dumps({"name": "网格通", "start_url": "/app"}))
    (root / "assets" / "abc123" / "app.js").write_text("export const x = 1;\n")
    (root / "assets" / "abc123" / "app.js.gz").write_bytes(gzip.compress(b"export const x = 1;\n"))
    (root / "assets" / "abc123" / "icon-192.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "assets" / "abc123" / "vendor" / "pbf.js").write_text("export {};\n")
    (tmp_path / "secret.js").write_text("secret")
    (root / "assets" / "abc123" / "link.js").symlink_to(tmp_path / "secret.js")
    monkeypatch.setattr(get_settings(), "field_dir", str(root))
    return root


async def test_page_worker_and_manifest_are_uncached_with_a_strict_policy(
    anon: httpx.AsyncClient, dist
) -> None:
    r = await anon.get("/app")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "/app/assets/abc123/app.js" in r.text
    r = await anon.get("/app/sw.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["service-worker-allowed"] == "/app"
    assert r.headers["cache-control"] == "no-cache"
    r = await anon.get("/app/manifest.webmanifest")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/manifest+json"
    assert r.json()["start_url"] == "/app"


async def test_assets_are_cached_for_a_year_and_gzipped(anon: httpx.AsyncClient, dist) -> None:
    r = await anon.get("/app/assets/abc123/app.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == b"export const x = 1;\n"  # httpx decodes it
    r = await anon.get("/app/assets/abc123/icon-192.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    r = await anon.get("/app/assets/abc123/vendor/pbf.js", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and "content-encoding" not in r.headers


@pytest.mark.parametrize(
    "name",
    [
        "abc123/%2e%2e/%2e%2e/index.html",
        "abc123/..%2F..%2F..%2Fsecret.js",
        "%2Fetc%2Fpasswd.js",
        "abc123/link.js",
        "abc123/.hidden.js",
        "abc123/missing.js",
        "abc123/app.py",
        "abc123",
    ],
)
async def test_no_path_leaves_the_assets(anon: httpx.AsyncClient, dist, name: str) -> None:
    problem(await anon.get(f"/app/assets/{name}"), 404, "asset_not_found")


async def test_not_built_is_a_503_problem(
    anon: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "field_dir", str(tmp_path / "nothing"))
    for path in ("/app", "/app/sw.js", "/app/manifest.webmanifest"):
        problem(await anon.get(path), 503, "field_app_not_built")
