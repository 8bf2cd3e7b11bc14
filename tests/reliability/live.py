"""Live servers for the reliability tests: a throwaway database with the demo committed, uvicorn
processes on free ports, tokens for every demo account. Used by the fuzz and fault tests and by
`make fuzz`; nothing here is a test itself."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import DEMO_USERS

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def db_url(base_url: str, name: str) -> str:
    return base_url.rsplit("/", 1)[0] + "/" + name


async def create_database(base_url: str, name: str, demo: bool = True) -> str:
    """(Re)create `name` on the cluster of `base_url`, migrate it and load the demo."""
    from app.config import async_url
    from app.demo.load import load_demo
    from app.migrate import upgrade

    admin = create_async_engine(
        async_url(db_url(base_url, "postgres")), isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as c:
        await c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await c.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    url = db_url(base_url, name)
    await asyncio.to_thread(upgrade, url)
    if demo:
        eng = create_async_engine(async_url(url))
        async with eng.begin() as c:
            await load_demo(c)
        await eng.dispose()
    return url


async def drop_database(base_url: str, name: str) -> None:
    from app.config import async_url

    admin = create_async_engine(
        async_url(db_url(base_url, "postgres")), isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as c:
        await c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def make_tokens(
    url: str, hours: int = 24, roles: tuple[str, ...] = DEMO_USERS
) -> dict[str, str]:
    """An access token per demo account, on committed sessions (no argon2 per request), valid
    for the session's `hours`."""
    from app.auth.policy import create_access_token
    from app.config import async_url

    eng = create_async_engine(async_url(url))
    out: dict[str, str] = {}
    async with eng.begin() as c:
        for name in roles:
            uid = (
                await c.execute(text("SELECT id FROM users WHERE username = :u"), {"u": name})
            ).scalar_one()
            sid = uuid.uuid4()
            await c.execute(
                text(
                    "INSERT INTO auth_sessions (id, user_id, expires_at) "
                    "VALUES (:sid, :uid, now() + make_interval(hours => :h))"
                ),
                {"sid": sid, "uid": uid, "h": hours},
            )
            out[name] = create_access_token(uid, sid, minutes=hours * 60)[0]
    await eng.dispose()
    return out


@dataclass
class Server:
    """One uvicorn process of the app."""

    url: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 120) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WANGGE_")},
            "DATABASE_URL": self.url,
            "ENV": "development",
            **self.env,
        }
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--no-proxy-headers",  # as make run: the app reads X-Forwarded-* itself
                "--timeout-graceful-shutdown",
                "3",
                # A client's pool must drop an idle connection before the server closes it: a
                # request sent as uvicorn closes it (5 s idle by default, as httpx's expiry) is
                # lost in flight, a ReadError (CI's run of stop 33, test_database_restart_under_load).
                "--timeout-keep-alive",
                "30",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode} (log: {self.log})")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"uvicorn did not come up on {self.base} (log: {self.log})")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup (a crash)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def rss_kb(self) -> int:
        """Resident memory of the server process (Linux /proc)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


@contextmanager
def servers(url: str, n: int, env: dict[str, str], logdir: Path) -> Iterator[list[Server]]:
    out = [Server(url, env, log=logdir / f"app{i}.log") for i in range(n)]
    try:
        for s in out:
            s.start()
        yield out
    finally:
        for s in out:
            s.stop()
