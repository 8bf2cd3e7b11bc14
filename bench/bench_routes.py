"""Benchmark the route table (issue 23): the CPU of finding a request's route, per hot path.

FastAPI matches the app's routes (and the routes of every included router) in order, so a path
served by the thirtieth router pays for trying the twenty-nine before it on every request. The
app's routers are ordered so that the hot paths come first (`app/main.py`): `/healthz`, the
grid lookup, the tiles, then the phone's report, its photos and the sync. This bench builds the
app (no database, no server) and times, in process with `time.process_time`, the walk over
`app.router.routes` that Starlette does for a request until the first full match, for each hot
path and for a few colder ones, interleaved round-robin (the machine is shared and noisy).
Printed: microseconds of CPU per match, and the ratio to `/healthz`'s (the first routes).

Run: ``.venv/bin/python bench/bench_routes.py [--quick]``. Results also go to bench/out/routes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import OUT

# (label, method, path): hot paths first, then colder ones for scale.
PATHS: list[tuple[str, str, str]] = [
    ("healthz", "GET", "/healthz"),
    ("lookup", "GET", "/api/v1/grids/lookup"),
    ("tile", "GET", "/tiles/grids/14/13722/6642.mvt"),
    ("report", "POST", "/api/v1/cases"),
    ("photo", "POST", "/api/v1/cases/123/attachments"),
    ("sync", "GET", "/api/v1/sync"),
    ("case", "GET", "/api/v1/cases/123"),
    ("patrol points", "POST", "/api/v1/patrols/123/points"),
    ("my tasks", "GET", "/api/v1/me/tasks"),
]


def match_index(routes: list[Any], scope: dict[str, Any]) -> int | None:
    from starlette.routing import Match

    for i, route in enumerate(routes):
        found, _ = route.matches(dict(scope))
        if found == Match.FULL:
            return i
    return None


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="fewer rounds (4 of 500)")
    args = p.parse_args(argv)
    # The app reads its settings at start-up only; no connection is opened to build it.
    os.environ.setdefault("WANGGE_DATABASE_URL", "postgresql://bench@127.0.0.1:1/bench")
    from app.main import create_app

    app = create_app()
    routes = list(app.router.routes)
    scopes = {
        label: {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "headers": [],
            "query_string": b"",
            "app": app,
        }
        for label, method, path in PATHS
    }
    index = {label: match_index(routes, s) for label, s in scopes.items()}
    missing = [label for label, i in index.items() if i is None]
    if missing:
        raise SystemExit(f"no route matches {missing}: update PATHS")
    rounds, per = (4, 500) if args.quick else (10, 2000)
    spent = dict.fromkeys(scopes, 0.0)
    labels = list(scopes)
    for r in range(rounds):
        order = labels[r % len(labels) :] + labels[: r % len(labels)]
        for label in order:
            s = scopes[label]
            t0 = time.process_time()
            for _ in range(per):
                match_index(routes, s)
            spent[label] += time.process_time() - t0
    us = {label: spent[label] / (rounds * per) * 1e6 for label in labels}
    print(f"route table: {len(routes)} entries at the top level; {rounds} rounds of {per} matches")
    print(f"  {'path':<16} {'method':<6} {'entry':>5} {'us CPU':>8} {'/ healthz':>9}")
    for label, method, _path in PATHS:
        ratio = us[label] / us["healthz"] if us["healthz"] else float("nan")
        print(f"  {label:<16} {method:<6} {index[label]:>5} {us[label]:>8.1f} {ratio:>9.2f}")
    OUT.mkdir(parents=True, exist_ok=True)
    result = {
        "entries": len(routes),
        "rounds": rounds,
        "per_round": per,
        "paths": {
            label: {"method": m, "path": path, "entry": index[label], "us_cpu": round(us[label], 2)}
            for label, m, path in PATHS
        },
    }
    (OUT / "routes.json").write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
