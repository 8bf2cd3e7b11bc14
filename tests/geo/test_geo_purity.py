"""geo/ is a pure library: no web framework, no ORM, no app imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

GEO = Path(__file__).resolve().parents[2] / "geo"
FORBIDDEN = ("fastapi", "sqlalchemy", "geoalchemy2", "app", "starlette", "pydantic", "asyncpg")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
    return mods


def test_geo_sources_do_not_import_forbidden_packages() -> None:
    files = sorted(GEO.glob("*.py"))
    assert files, "geo/*.py not found"
    offenders = [
        f"{f.name}: {m}"
        for f in files
        for m in sorted(_imported_modules(f))
        if m.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_geo_sources_text_grep() -> None:
    # Belt and braces: also catch dynamic imports such as importlib.import_module("app...").
    for f in GEO.glob("*.py"):
        text = f.read_text(encoding="utf-8")
        for name in ("fastapi", "sqlalchemy", "geoalchemy2"):
            assert name not in text, f"{f.name} mentions {name}"
        assert "import_module" not in text and "__import__" not in text, f.name


def test_importing_geo_loads_no_framework() -> None:
    code = (
        "import sys, geo, geo.crs, geo.validate, geo.issues, geo.points, geo.repair, geo.measure, "
        "geo.geojson, geo.coverage, geo.sizing\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
