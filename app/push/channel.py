"""The interface every way of reaching a phone implements: Web Push today (`app.push.webpush`);
a vendor channel (a Chinese push service, SMS) later, registered under its name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Device:
    """Where to send: one subscription as its channel needs it."""

    id: int
    channel: str
    endpoint: str
    keys: dict[str, str]
    """Web Push: `p256dh`, `auth` (the browser's PushSubscription keys)."""


@dataclass(frozen=True)
class Sent:
    status: int | None
    error: str | None = None
    """None: delivered (accepted by the push service)."""
    gone: bool = False
    """The device no longer exists (Web Push: 404/410): deactivate it, never retry."""


class Channel(Protocol):
    name: str

    async def send(self, device: Device, message: dict[str, Any], ttl: int) -> Sent: ...


_channels: dict[str, Channel] = {}


def register(channel: Channel) -> None:
    _channels[channel.name] = channel


def channel(name: str) -> Channel | None:
    return _channels.get(name)
