"""Schemathesis over the committed openapi.yaml, on a live app and a real database, as each role.

Each role fuzzes its own copy of a database with the demo committed (cloned from a template, so
what one role's fuzzing deletes cannot starve another's), on its own uvicorn. Checks: all of
schemathesis's but positive data acceptance (`CHECKS`, `EXCLUDE_CHECKS`). `make test` runs it small
(tests/reliability/test_fuzz.py); `make fuzz` runs it longer:

    TEST_DATABASE_URL=... python -m tests.reliability.fuzz --examples 10 --phases examples,coverage,fuzzing,stateful
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.reliability.live import (
    DEMO_USERS,
    ROOT,
    Server,
    create_database,
    db_url,
    drop_database,
    make_tokens,
)

CHECKS = os.environ.get("FUZZ_CHECKS", "all")
"""Every schemathesis check (issue 17), in `make test` and in `make fuzz`: server errors, the
documented schema, statuses and content types, headers, `Allow`, undeclared methods, missing
headers, ignored auth, negative data rejected... but the one below."""
EXCLUDE_CHECKS = os.environ.get("FUZZ_EXCLUDE_CHECKS", "positive_data_acceptance")
"""But one: `positive_data_acceptance` expects every schema-valid request to succeed, and random
schema-valid data meets the business rules the schema cannot state (an id that does not exist:
404; a state the loop refuses: 409; cross-field rules: 422). It found 109 such refusals for the
administrator (`FUZZ_EXCLUDE_CHECKS= make fuzz` shows them)."""
REQUEST_TIMEOUT = 20
"""Seconds a request may take before the fuzzer gives up on it; `--checks all`'s response-time
limit (10 s by default) is set to the same: speed is measured by `bench/`, side by side, never
asserted on a shared machine (a district's field-work figures took 13–19 s under a `make fuzz`
load)."""
TIMEOUT = int(os.environ.get("FUZZ_TIMEOUT", "900"))
"""Seconds one role's run may take (`make fuzz`: an hour; its tokens last six)."""
EXCLUDE = ("/api/v1/auth/logout",)
"""Logging out ends the fuzzer's own session: every later request would be a 401."""


@dataclass
class RoleRun:
    role: str
    returncode: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


async def _clone(base_url: str, template: str, name: str) -> str:
    from app.config import async_url

    admin = create_async_engine(
        async_url(db_url(base_url, "postgres")), isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as c:
        await c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    await admin.dispose()
    return db_url(base_url, name)


def _st(server: Server, token: str, examples: int, phases: str, workdir: Path, seed: int | None):
    cmd = [
        str(Path(sys.executable).with_name("st")),
        "run",
        str(ROOT / "openapi.yaml"),
        "--url",
        server.base,
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--phases",
        phases,
        "--no-shrink",
        # Dates are declared in 2000-2100 (a pattern on a date-time): the generator filters
        # most of what it draws, and a body with two of them (a duty slot) fails the health
        # check without a finding. The check is about the generator, not the API.
        "--suppress-health-check",
        "filter_too_much",
        "--request-timeout",
        str(REQUEST_TIMEOUT),
        "--max-response-time",
        str(REQUEST_TIMEOUT),
        "--warnings",
        os.environ.get("FUZZ_WARNINGS", "off"),
    ]
    if EXCLUDE_CHECKS:
        cmd += ["--exclude-checks", EXCLUDE_CHECKS]
    for path in EXCLUDE:
        cmd += ["--exclude-path", path]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return subprocess.run(
        cmd,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
    )


def _run_lane(
    base_url: str,
    template: str,
    lane: str,
    roles: dict[str, tuple[int, str]],
    tokens: dict[str, str],
    workdir: Path,
    seed: int | None,
) -> list[RoleRun]:
    """These roles one after another, on one server and one copy of the database."""
    name = f"{template}_{lane}"
    url = asyncio.run(_clone(base_url, template, name))
    log = workdir / f"app-{lane}.log"
    server = Server(
        url,
        {
            "WANGGE_MEDIA_BACKEND": "dir",
            "WANGGE_MEDIA_DIR": str(workdir / f"media-{lane}"),
            "WANGGE_SCHEDULER_ENABLED": "false",
            "WANGGE_STREAM_MAX_SECONDS": "1",  # a stream ends: the fuzzer reads it whole
        },
        log=log,
    )
    out = []
    try:
        server.start()
        for role, (examples, phases) in roles.items():
            started = time.monotonic()
            proc = _st(server, tokens[role], examples, phases, workdir, seed)
            output = proc.stdout + proc.stderr
            if proc.returncode != 0:
                output += "\n--- server log ---\n" + log.read_text()[-4000:]
            out.append(RoleRun(role, proc.returncode, time.monotonic() - started, output))
    finally:
        server.stop()
        asyncio.run(drop_database(base_url, name))
    return out


def run(
    base_url: str,
    roles: dict[str, tuple[int, str]],
    parallel: int = 2,
    seed: int | None = None,
) -> list[RoleRun]:
    """roles: role → (max examples per operation, phases). The administrator fuzzes a copy of
    the database of its own (it may delete the others' posts); the other roles share one."""
    template = f"wangge_fuzz_{uuid.uuid4().hex[:8]}"

    async def prepare() -> dict[str, str]:
        url = await create_database(base_url, template)
        return await make_tokens(url, hours=6)

    tokens = asyncio.run(prepare())
    lanes = [
        {r: v for r, v in roles.items() if r == "admin"},
        {r: v for r, v in roles.items() if r != "admin"},
    ]
    try:
        with (
            tempfile.TemporaryDirectory(prefix="wangge-fuzz-") as tmp,
            ThreadPoolExecutor(parallel) as pool,
        ):
            futures = [
                pool.submit(
                    _run_lane, base_url, template, f"lane{i}", lane, tokens, Path(tmp), seed
                )
                for i, lane in enumerate(lanes)
                if lane
            ]
            return [r for f in futures for r in f.result()]
    finally:
        asyncio.run(drop_database(base_url, template))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--examples", type=int, default=25)
    p.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    p.add_argument("--roles", default=",".join(DEMO_USERS))
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--seed", type=int)
    p.add_argument("-v", "--verbose", action="store_true", help="print every role's report")
    a = p.parse_args()
    base = os.environ.get("TEST_DATABASE_URL") or os.environ["DATABASE_URL"]
    runs = run(
        base,
        {r: (a.examples, a.phases) for r in a.roles.split(",")},
        parallel=a.parallel,
        seed=a.seed,
    )
    for r in runs:
        print(f"== {r.role}: {'ok' if r.ok else 'FAILED'} in {r.seconds:.0f} s")
        if not r.ok or a.verbose:
            print(r.output)
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
