"""Bad input, found by machines: schemathesis over the committed openapi.yaml, on a live app
with a real database, as every demo role (see tests/reliability/fuzz.py).

In `make test` it is kept to a couple of minutes: the administrator (who may call nearly every
operation) gets the coverage phase (boundary values of every parameter) and random fuzzing; the
other roles get random fuzzing. `make fuzz` runs every phase for every role, longer
(FUZZ_EXAMPLES, FUZZ_PHASES)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.reliability import fuzz
from tests.reliability.live import DEMO_USERS, ROOT


async def test_schemathesis_as_every_role(engine) -> None:
    base = os.environ["TEST_DATABASE_URL"]
    examples = int(os.environ.get("FUZZ_EXAMPLES", "0"))
    if examples:
        phases = os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing,stateful")
        roles = {r: (examples, phases) for r in DEMO_USERS}
    else:
        roles = {"admin": (2, "examples,coverage,fuzzing")}
        roles.update({r: (1, "examples,fuzzing") for r in DEMO_USERS if r != "admin"})
    # A fixed seed in `make test` (the same cases every run); `make fuzz` draws a new one.
    seed = None if examples else int(os.environ.get("FUZZ_SEED", "20261130"))
    runs = await asyncio.to_thread(fuzz.run, base, roles, 2, seed)
    failed = [r for r in runs if not r.ok]
    # Every failed role's whole report (the assertion shows only its end) under .data/fuzz/.
    reports = Path(os.environ.get("FUZZ_REPORT_DIR", ROOT / ".data" / "fuzz"))
    reports.mkdir(parents=True, exist_ok=True)
    for r in runs:
        print(f"schemathesis as {r.role}: {'ok' if r.ok else 'FAILED'} in {r.seconds:.0f} s")
        if not r.ok:
            (reports / f"{r.role}.log").write_text(r.output, encoding="utf-8")
    assert not failed, f"whole reports in {reports}/\n\n" + "\n\n".join(
        f"=== as {r.role}\n{r.output[-12000:]}" for r in failed
    )
