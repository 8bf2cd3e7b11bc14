"""A local Web Push service for the tests (what a browser vendor's push service and the browser
do together): it checks each request's VAPID signature (RFC 8292: an ES256 JWT for this origin,
signed by the key in `k=`) and decrypts the aes128gcm payload (RFC 8188 / RFC 8291) with the
subscription's private key, as the browser would. Real crypto, no mocks.

Paths: `/push/<name>`. `gone` answers 410; `flaky` answers 500 the first time, then 201."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@dataclass
class Browser:
    """A device's push keys, as `pushManager.subscribe` makes them."""

    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, endpoint: str) -> dict[str, Any]:
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {
                "p256dh": b64url(_point(self.private.public_key())),
                "auth": b64url(self.auth),
            },
        }

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 §3.4 / RFC 8188 §2: one record, the sender's key as the key id."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        keyid, ciphertext = body[21 : 21 + idlen], body[21 + idlen :]
        assert idlen == 65 and len(ciphertext) <= rs
        sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), keyid)
        shared = self.private.exchange(ec.ECDH(), sender)
        info = b"WebPush: info\x00" + _point(self.private.public_key()) + keyid
        ikm = HKDF(hashes.SHA256(), 32, salt=self.auth, info=info).derive(shared)
        cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(
            ikm
        )
        nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(
            ikm
        )
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        stripped = padded.rstrip(b"\x00")
        assert stripped.endswith(b"\x02"), "the last record's delimiter"
        return stripped[:-1]


@dataclass
class Received:
    path: str
    status: int
    claims: dict[str, Any]
    key: str
    headers: dict[str, str]
    message: dict[str, Any] | None


class PushService:
    def __init__(self) -> None:
        self.browsers: dict[str, Browser] = {}
        self.received: list[Received] = []
        self.failures: dict[str, int] = {"flaky": 1}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    def device(self, name: str) -> dict[str, Any]:
        b = self.browsers.setdefault(name, Browser())
        return b.subscription(self.endpoint(name))

    def __enter__(self) -> PushService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _verify(self, authorization: str) -> tuple[dict[str, Any], str]:
        scheme, _, params = authorization.partition(" ")
        assert scheme == "vapid", authorization
        parts = dict(p.strip().split("=", 1) for p in params.split(","))
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
        claims = jwt.decode(parts["t"], key, algorithms=["ES256"], audience=self.origin)
        assert claims["exp"] <= time.time() + 24 * 3600, "exp at most 24 h ahead (RFC 8292 §2)"
        assert claims["sub"].startswith(("mailto:", "https://"))
        return claims, parts["k"]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    claims, key = service._verify(self.headers.get("Authorization", ""))
                    assert self.headers["Content-Encoding"] == "aes128gcm"
                    message = json.loads(service.browsers[name].decrypt(body))
                except Exception as e:  # a bad signature or payload: refused, and recorded
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(repr(e).encode())
                    service.received.append(Received(self.path, 400, {}, "", {}, None))
                    return
                status = 201
                if name == "gone":
                    status = 410
                elif service.failures.get(name, 0) > 0:
                    service.failures[name] -= 1
                    status = 500
                service.received.append(
                    Received(self.path, status, claims, key, dict(self.headers), message)
                )
                self.send_response(status)
                self.end_headers()

        return Handler
