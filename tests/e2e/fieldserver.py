"""The field app's browser tests' server: uvicorn serving the app and the built field app on a
free port, on the test database (one copy for test_field_app.py and test_field_patrol.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parent / "artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def field_server(media: Path, log_name: str, **env_extra: str) -> Iterator[str]:
    """The server's base URL while the block runs; its log in tests/e2e/artifacts/`log_name`."""
    if not (ROOT / "field" / "dist" / "index.html").is_file():
        pytest.fail("the field app is not built: run `make field` (make test does)")
    port = _free_port()
    env = {
        **os.environ,
        "ENV": "test",
        "WANGGE_SCHEDULER_ENABLED": "false",
        "WANGGE_MEDIA_DIR": str(media),
        "DATABASE_URL": os.environ["TEST_DATABASE_URL"],
        **env_extra,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / log_name, "w")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "app.main:app"),
            *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a loaded machine (2 cores, many test runs)
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start (exit code {proc.poll()})")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def guard(ctx: Any, server: str, errors: list[str], posts: list[str]) -> Callable[[Any], None]:
    """Record what a browser context must not do (requests off the server's origin) and every
    POST it sends; returns `watch(page)`, which records a page's errors and CSP violations."""
    ctx.on(
        "request",
        lambda r: (
            r.url.startswith((server + "/", "data:", "blob:"))
            or errors.append(f"off-origin request: {r.url}")
        ),
    )
    ctx.on("request", lambda r: r.method == "POST" and posts.append(r.url))

    def watch(page: Any) -> None:
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "console",
            lambda m: "Content Security Policy" in m.text and errors.append(m.text),
        )

    return watch
