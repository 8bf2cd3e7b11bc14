"""The floors of the house (docs/architecture.md): the import-linter contracts in pyproject.toml
hold (imports only go down, no circle, geo/ pure), and no file of app/ is over ~600 lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
"""The files of the kernel, platform, auth and users (the other packages are split by their owners)."""


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_kernel_files_stay_small() -> None:
    kernel = [
        *ROOT.glob("app/*.py"),
        *ROOT.glob("app/auth/*.py"),
        *ROOT.glob("app/audit/*.py"),
        *ROOT.glob("app/users/*.py"),
        *ROOT.glob("app/health/*.py"),
    ]
    big = {
        str(p.relative_to(ROOT)): n
        for p in kernel
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not big, big
