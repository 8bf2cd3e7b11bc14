"""Shared by the HTTP benchmarks: timing (`Tally`, `drive`), a minimal keep-alive HTTP/1.1 client,
uvicorn servers on loopback (started, awaited, always stopped) and the report's number formats.

Import it from a bench script run as ``python bench/bench_x.py`` (bench/ is then on sys.path).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
MAX_CALLS = 10_000_000  # per worker and slice: every loop is bounded even if the clock is not

_children: list[subprocess.Popen[bytes]] = []


# --- measurement ------------------------------------------------------------------------------


@dataclass
class Tally:
    """Every call of one variant over all its slices."""

    latencies_ns: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0
    inside: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    cursor: int = 0  # next point; every variant walks the same sequence from the start

    def result(self) -> dict[str, Any]:
        n = len(self.latencies_ns)
        lat = np.asarray(self.latencies_ns, dtype=np.float64) / 1e6
        return {
            "requests": n,
            "seconds": round(self.elapsed_s, 3),
            "rps": round(n / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "p50_ms": round(float(np.percentile(lat, 50)), 4) if n else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 4) if n else None,
            "mean_ms": round(float(lat.mean()), 4) if n else None,
            "inside_share": round(self.inside / n, 4) if n else None,
            "errors": self.errors,
            "error_samples": self.error_samples,
        }


Call = Callable[[int], Awaitable[bool | None]]
"""Answer point i: True inside a grid, False nearest only, None for the floor; raise on error."""


async def drive(tally: Tally, n_points: int, workers: list[Call], seconds: float) -> None:
    """Run the workers concurrently against consecutive points until the deadline."""
    start = time.perf_counter_ns()
    deadline = start + int(seconds * 1e9)

    async def worker(call: Call) -> None:
        for _ in range(MAX_CALLS):
            t0 = time.perf_counter_ns()
            if t0 >= deadline:
                return
            i = tally.cursor % n_points
            tally.cursor += 1
            try:
                inside = await call(i)
            except Exception as e:
                tally.errors += 1
                if len(tally.error_samples) < 3:
                    tally.error_samples.append(f"{type(e).__name__}: {e}"[:200])
                continue
            tally.latencies_ns.append(time.perf_counter_ns() - t0)
            tally.inside += bool(inside)

    async with asyncio.timeout(seconds + 60):  # a stuck server cannot hang the bench
        await asyncio.gather(*(worker(w) for w in workers))
    tally.elapsed_s += (time.perf_counter_ns() - start) / 1e9


def drive_sync(tally: Tally, n_points: int, call: Callable[[int], bool], seconds: float) -> None:
    start = time.perf_counter_ns()
    deadline = start + int(seconds * 1e9)
    lat = tally.latencies_ns
    for _ in range(MAX_CALLS):
        t0 = time.perf_counter_ns()
        if t0 >= deadline:
            break
        inside = call(tally.cursor % n_points)
        lat.append(time.perf_counter_ns() - t0)
        tally.cursor += 1
        tally.inside += inside
    tally.elapsed_s += (time.perf_counter_ns() - start) / 1e9


# --- database -------------------------------------------------------------------------------------


def libpq_url(url: str) -> str:
    """Any URL the app accepts, as the plain postgresql:// URL asyncpg.connect takes."""
    from app.config import async_url  # the bench script has put the repository on sys.path

    return "postgresql://" + async_url(url).removeprefix("postgresql+asyncpg://")


# --- HTTP -----------------------------------------------------------------------------------------


class HttpConn:
    """A minimal HTTP/1.1 keep-alive GET (and POST) client for our own uvicorn on loopback.

    httpx costs ~1 ms of client CPU per request here (it tops out below 1,000 req/s on this
    2-CPU box even against /healthz, so it would measure itself); this costs ~0.1 ms. It reads
    Content-Length bodies only, which is what uvicorn sends for JSON responses. `headers` are
    sent with every request (e.g. Authorization).
    """

    def __init__(self, port: int, headers: Mapping[str, str] | None = None) -> None:
        self.port = port
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.host = f"Host: 127.0.0.1:{port}\r\n{extra}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def get(self, path: str) -> int:
        """GET path, return the status."""
        return (await self.fetch(path))[0]

    async def fetch(self, path: str) -> tuple[int, bytes]:
        """GET path, return the status and the body. A kept-alive connection the server closed
        meanwhile (uvicorn drops idle ones after 5 s) is retried once on a fresh one, as clients
        do."""
        return await self._send(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.host)

    async def post(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        """POST body to path (with `headers` besides the connection's), return the status and
        the body. Retried once on a fresh connection like `fetch`: only safe for a request the
        server dedupes (e.g. one with an Idempotency-Key) or that never reached it."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"POST {path} HTTP/1.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}"
        )
        return await self._send(head.encode() + self.host + body)

    async def _send(self, request: bytes) -> tuple[int, bytes]:
        reused = self.writer is not None
        try:
            return await self._exchange(request)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not reused:
                raise
            return await self._exchange(request)

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            await self.connect()
        assert self.writer is not None and self.reader is not None
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length: int | None = None
            close = False
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                key = key.strip().lower()
                if key == b"content-length":
                    length = int(value)
                elif key == b"connection":
                    close = value.strip().lower() == b"close"
            if length is None:
                raise RuntimeError("response without Content-Length")
            body = await self.reader.readexactly(length)
        except BaseException:
            self.close()  # unknown state: reconnect next time
            raise
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# --- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BENCH_LIMITS = {
    "WANGGE_LOGIN_PER_ACCOUNT_PER_MINUTE": "1000",
    "WANGGE_LOGIN_PER_IP_PER_MINUTE": "100000",
    "WANGGE_INTAKE_PER_ACCOUNT_PER_MINUTE": "100000",
    "WANGGE_INTAKE_PER_IP_PER_MINUTE": "1000000",
}
"""The benches drive one account from one address far above any person's rate: the per-account
and per-address limits are raised (the limiter still runs, and is paid for, on every limited
call). The environment overrides them."""


def start_server(
    url: str,
    log_path: Path,
    *,
    app: str = "app.main:app",
    app_dir: str | None = None,
    env: Mapping[str, str | None] | None = None,
    workers: int = 1,
) -> tuple[subprocess.Popen[bytes], int]:
    """A uvicorn serving `app` on a free loopback port, on the database `url`: one worker unless
    `workers` says otherwise (`make run` serves with as many as the machine has cores).

    `env` adds variables to the server's environment (None removes one); `app_dir` is uvicorn's
    --app-dir (relative to the repository root). The server is stopped by `stop_server` or, at
    the latest, by `stop_all_servers`.
    """
    port = free_port()
    server_env = {**BENCH_LIMITS, **os.environ, "DATABASE_URL": url, "WANGGE_DATABASE_URL": url}
    for key, value in (env or {}).items():
        if value is None:
            server_env.pop(key, None)
        else:
            server_env[key] = value
    cmd = [sys.executable, "-m", "uvicorn", app]
    if app_dir is not None:
        cmd += ["--app-dir", app_dir]
    cmd += [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT)
    _children.append(proc)
    return proc, port


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc in _children:
        _children.remove(proc)


def proc_memory_kb(pid: int) -> dict[str, int]:
    """A process's resident memory now (VmRSS) and at its peak so far (VmHWM), in kB (Linux)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_all_servers() -> None:
    """Stop every server `start_server` started and nobody stopped yet."""
    for proc in list(_children):
        stop_server(proc)


async def wait_ready(
    proc: subprocess.Popen[bytes], client: httpx.AsyncClient, log_path: Path
) -> None:
    deadline = time.monotonic() + 90  # a loaded machine imports the app slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            r = await client.get("/readyz")
            if r.status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"uvicorn did not become ready (exit {proc.poll()}):\n{tail}")


# --- report -------------------------------------------------------------------------------------


def ratios(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    def div(x: float | None, y: float | None) -> float | None:
        return float(f"{x / y:.4g}") if x and y else None

    return {
        "throughput": div(a["rps"], b["rps"]),
        "p50": div(a["p50_ms"], b["p50_ms"]),
        "p99": div(a["p99_ms"], b["p99_ms"]),
    }


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def fmt_ratio(v: float | None) -> str:
    if v is None:
        return "-"
    if v < 0.01:
        return f"1/{1 / v:,.0f}"
    return f"{v:.3f}x" if v < 0.1 else f"{v:.2f}x" if v < 100 else f"{v:,.0f}x"


# --- running --------------------------------------------------------------------------------------


def run_loop(coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    try:
        import uvloop  # what uvicorn[standard] serves with; a lighter client loop too
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C would, so the `finally` blocks stop the servers."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def run_bench(
    name: str, banner: str, bench: Callable[[str], Coroutine[Any, Any, dict[str, Any]]]
) -> dict[str, Any]:
    """What every bench_*.py main does: the database from BENCH_DATABASE_URL, migrated; the
    banner; `bench(url)` on an event loop, every server it started stopped afterwards; the
    report with its total time written to bench/out/<name>.json."""
    import json

    from app import migrate

    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        raise SystemExit(f"bench_{name}: set BENCH_DATABASE_URL (or run scripts/bench.sh)")
    exit_on_sigterm()
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(banner, flush=True)
    migrate.upgrade(url)
    try:
        report = run_loop(bench(url))
    finally:
        stop_all_servers()
    report["total_s"] = round(time.perf_counter() - t0, 1)
    out = OUT / f"{name}.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\ntotal {report['total_s']} s; results in {out.relative_to(ROOT)}")
    return report


# --- the benchmark database -------------------------------------------------------------------

_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
  AND c.relname NOT IN ('alembic_version', 'spatial_ref_sys')
  AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgtype & 32 <> 0
                  AND t.tgfoid::regproc::text <> 'citus_truncate_trigger')  -- Citus's own
ORDER BY 1
"""


async def reset(conn: Any) -> None:
    """Empty every table the migrations made but alembic_version, spatial_ref_sys and those
    with a TRUNCATE trigger (the append-only audit_log keeps its rows), so the benches share one
    database in any order. `conn` is an asyncpg connection."""
    tables = [r[0] for r in await conn.fetch(_TABLES)]
    await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


async def load_demo_district(url: str) -> Any:
    """The demo district, departments, catalogue and accounts (app.demo.load); its LoadReport."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.config import async_url
    from app.demo.load import load_demo

    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            return await load_demo(conn)
    finally:
        await engine.dispose()


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    """A bearer token for a demo account (the app's OAuth2 password flow)."""
    r = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
    if r.status_code != 200:
        raise RuntimeError(f"login as {username}: HTTP {r.status_code}: {r.text[:300]}")
    return str(r.json()["access_token"])
