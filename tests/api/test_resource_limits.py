"""Issue 17, resources before trust: an upload without a valid token is refused as soon as its
headers arrive (the server read the whole declared body first: an 80 MB declaration with 1 MB
sent held the connection), and a body over the limit is refused on its headers too.

On a real uvicorn with a raw socket: the headers, then 1 MB of the 80 MB they declare, then the
answer must come within seconds while the client still owes 79 MB."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator

import pytest

from tests.reliability.live import Server

DECLARED = 80 * 1_048_576
SENT = 1_048_576


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server(os.environ["TEST_DATABASE_URL"], {"WANGGE_SCHEDULER_ENABLED": "false"})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _send_partial(
    srv: Server, path: str, headers: dict[str, str], declared: int
) -> tuple[int, bytes, float]:
    """Headers declaring `declared` bytes, then 1 MB of them; the status, the answer and how
    long it took from the headers to the status line."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {declared}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        started = time.monotonic()
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        with contextlib.suppress(OSError):  # the server may have answered and closed already
            sock.sendall(b"--b\r\n" + b"x" * (SENT - 5))
        sock.settimeout(5)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            pytest.fail(f"no answer within 5 s to {path} ({len(answer)} bytes read)")
        took = time.monotonic() - started
        # the rest of the answer (its body), as far as it comes
        sock.settimeout(2)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except (TimeoutError, OSError):
            pass
    status = int(answer.split(b" ", 2)[1])
    return status, answer, took


MULTIPART = {"Content-Type": "multipart/form-data; boundary=b"}


def test_upload_without_token_is_refused_on_its_headers(server: Server) -> None:
    status, answer, took = _send_partial(server, "/api/v1/cases/1/attachments", MULTIPART, DECLARED)
    assert status == 401, answer[:500]
    assert b"application/problem+json" in answer and b'"unauthenticated"' in answer
    assert took < 3, took


def test_upload_with_a_forged_token_is_refused_on_its_headers(server: Server) -> None:
    forged = {**MULTIPART, "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.x"}
    status, answer, took = _send_partial(server, "/api/v1/cases/1/attachments", forged, DECLARED)
    assert status == 401 and b'"invalid_token"' in answer, answer[:500]
    assert took < 3, took


def test_import_without_token_is_refused_on_its_headers(server: Server) -> None:
    status, answer, took = _send_partial(
        server, "/api/v1/grids/import", {"Content-Type": "application/json"}, 4 * SENT
    )
    assert status == 401, answer[:500]
    assert took < 3, took


def test_a_declared_body_over_the_limit_is_413_on_its_headers(server: Server) -> None:
    status, answer, took = _send_partial(
        server, "/api/v1/cases", {"Content-Type": "application/json"}, DECLARED
    )
    assert status == 413 and b'"payload_too_large"' in answer, answer[:500]
    assert took < 3, took
