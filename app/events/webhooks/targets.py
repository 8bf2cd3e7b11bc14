"""Where a webhook may be sent: public addresses only (no SSRF into the server's own network).

A target's host is resolved (an IP literal is taken as it is) and every address it resolves to
must be global unicast: loopback, private, link-local (cloud metadata at 169.254.169.254 among
them), shared, documentation, reserved, unspecified and multicast addresses are refused, and so
are IPv4 addresses mapped into IPv6. Checked when subscribing and again before each delivery (a
name may be pointed elsewhere later). `webhook_allow_private` lifts the rule for tests and local
development."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.config import get_settings

RESOLVE_TIMEOUT = 3.0


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = await asyncio.wait_for(
        asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM),
        RESOLVE_TIMEOUT,
    )
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def refusal(url: str) -> tuple[str, str] | None:
    """Why this URL may not receive webhooks (Chinese, English), or None."""
    if get_settings().webhook_allow_private:
        return None
    host = urlsplit(url).hostname
    if not host:
        return ("地址缺少主机名", "The URL has no host")
    try:
        addresses = await _addresses(host)
    except (OSError, TimeoutError, UnicodeError):
        return (f"无法解析主机名：{host}", f"Cannot resolve the host: {host}")
    if not addresses:
        return (f"无法解析主机名：{host}", f"Cannot resolve the host: {host}")
    bad = [str(a) for a in addresses if not _public(a)]
    if bad:
        return (
            f"不能向本机、内网、链路本地或组播地址推送：{host}（{', '.join(bad)}）",
            f"Webhooks cannot target loopback, private, link-local or multicast addresses: "
            f"{host} ({', '.join(bad)})",
        )
    return None
