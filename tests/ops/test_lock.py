"""The lock files (requirements/*.txt, scripts/lock.sh) agree with pyproject.toml: every direct
dependency is locked at the version pyproject pins, the development set locks the runtime set at
the same versions, and every line carries hashes (pip installs them with --require-hashes)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(reqs: list[str]) -> dict[str, str]:
    out = {}
    for r in reqs:
        m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^;\s]+)", r)
        assert m, f"not pinned: {r}"
        out[_norm(m.group(1))] = m.group(3)
    return out


def _lock(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / name).read_text()
    entries = re.findall(
        r"^([A-Za-z0-9_.-]+)==(\S+)((?: \\\n\s+--hash=sha256:[0-9a-f]{64})+)", text, re.M
    )
    names = re.findall(r"^([A-Za-z0-9_.-]+)==", text, re.M)
    assert len(entries) == len(names), "a locked package without hashes"
    return {_norm(n): v for n, v, _ in entries}


def test_lock_files_pin_what_pyproject_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = _lock("runtime.txt"), _lock("dev.txt")
    for name, version in _pins(project["dependencies"]).items():
        assert runtime.get(name) == version, (name, version, runtime.get(name))
    for name, version in _pins(project["optional-dependencies"]["dev"]).items():
        assert dev.get(name) == version, (name, version, dev.get(name))
    # the development set is the runtime set (same versions) plus the tools
    assert {k: dev[k] for k in runtime} == runtime
    # what make run installs carries no test tool
    for tool in ("pytest", "playwright", "moto", "schemathesis", "hypothesis", "mypy", "ruff"):
        assert tool not in runtime, tool
    assert "geojson-pydantic" not in runtime and "geojson-pydantic" not in dev
