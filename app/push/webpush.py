"""Web Push (RFC 8030) with VAPID (RFC 8292) and the aes128gcm payload (RFC 8188/8291): the
payload is encrypted by `pywebpush` for the device's keys and POSTed with httpx."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from pywebpush import WebPusher

from app.push import vapid
from app.push.channel import Device, Sent

GONE = (404, 410)


class WebPush:
    name = "webpush"

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self.client = client

    async def send(self, device: Device, message: dict[str, Any], ttl: int) -> Sent:
        info = {"endpoint": device.endpoint, "keys": device.keys}
        try:
            body = WebPusher(info).encode(orjson.dumps(message), "aes128gcm")["body"]
        except Exception as e:  # keys that do not decode: the device can never be reached
            return Sent(None, f"bad keys: {type(e).__name__}: {e}"[:300], gone=True)
        parts = urlsplit(device.endpoint)
        headers = {
            "Authorization": vapid.authorization(
                f"{parts.scheme}://{parts.netloc}", int(time.time()) + 12 * 3600
            ),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(ttl),
            "Urgency": "high" if message.get("urgent") else "normal",
        }
        client = self.client or httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        try:
            r = await client.post(device.endpoint, content=body, headers=headers)
        except httpx.HTTPError as e:
            return Sent(None, f"{type(e).__name__}: {e}"[:300])
        finally:
            if self.client is None:
                await client.aclose()
        if 200 <= r.status_code < 300:
            return Sent(r.status_code)
        return Sent(r.status_code, f"HTTP {r.status_code}: {r.text[:200]}", r.status_code in GONE)
