"""What grew in a process between two snapshots of bench/_traced_app.py.

    python bench/trace_diff.py bench/out/trace-PID-1 bench/out/trace-PID-2 [--top 15]

Prints the RSS, the bytes Python traced and glibc's malloc totals at both; the allocation sites
(grouped by line, then by full traceback) whose live bytes grew most; and the object types whose
live count grew most. `bench/bench_soak.py --trace` runs it for each replica.
"""

from __future__ import annotations

import argparse
import json
import linecache
import sys
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _short(filename: str) -> str:
    for marker in ("site-packages/", "lib/python3"):
        i = filename.find(marker)
        if i >= 0:
            return filename[i + len(marker) :] if marker == "site-packages/" else filename[i:]
    try:
        return str(Path(filename).relative_to(ROOT))
    except ValueError:
        return filename


def _frame(frame: tracemalloc.Frame) -> str:
    line = linecache.getline(frame.filename, frame.lineno).strip()
    return f"{_short(frame.filename)}:{frame.lineno}  {line[:90]}"


def _ours(tb: tracemalloc.Traceback) -> tracemalloc.Frame | None:
    """The innermost frame in app/ (where our code asked for the memory), if any."""
    for frame in reversed(tb):  # from the newest frame outwards
        if "/app/" in frame.filename and "site-packages" not in frame.filename:
            return frame
    return None


def diff(before: Path, after: Path, top: int = 15) -> dict[str, Any]:
    a = json.loads(Path(str(before) + ".json").read_text())
    b = json.loads(Path(str(after) + ".json").read_text())
    objects = sorted(
        (
            (k, b["objects"].get(k, 0) - a["objects"].get(k, 0), b["objects"].get(k, 0))
            for k in set(a["objects"]) | set(b["objects"])
        ),
        key=lambda x: -x[1],
    )[:top]
    out: dict[str, Any] = {
        "before": {k: v for k, v in a.items() if k != "objects"},
        "after": {k: v for k, v in b.items() if k != "objects"},
        "by_line": [],
        "by_traceback": [],
        "objects": objects,
        "traced": False,
    }
    if not Path(str(after) + ".tracemalloc").exists():  # served with 0 frames: totals only
        return out
    sa = tracemalloc.Snapshot.load(str(before) + ".tracemalloc")
    sb = tracemalloc.Snapshot.load(str(after) + ".tracemalloc")
    filters = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    ]
    sa, sb = sa.filter_traces(filters), sb.filter_traces(filters)
    out["traced"] = True
    out["by_line"] = [s for s in sb.compare_to(sa, "lineno") if s.size_diff > 0][:top]
    out["by_traceback"] = [s for s in sb.compare_to(sa, "traceback") if s.size_diff > 0][:top]
    return out


def print_diff(d: dict[str, Any], out: Any = sys.stdout) -> None:
    a, b = d["before"], d["after"]

    def mb(x: int) -> str:
        return f"{x / 1048576:.1f}"

    ma, mb_ = a.get("mallinfo") or {}, b.get("mallinfo") or {}
    print(
        f"pid {b['pid']}: RSS {a['vmrss_kb'] // 1024} → {b['vmrss_kb'] // 1024} MB (anonymous "
        f"{a['rssanon_kb'] // 1024} → {b['rssanon_kb'] // 1024}, files {a['rssfile_kb'] // 1024}"
        f" → {b['rssfile_kb'] // 1024}); traced by Python {mb(a['traced_bytes'])} → "
        f"{mb(b['traced_bytes'])} MB; threads {a['threads']} → {b['threads']}; secondary malloc "
        f"arenas {a['thread_arenas']} → {b['thread_arenas']}; event streams "
        f"{a['sse_subscribers']} → {b['sse_subscribers']}",
        file=out,
    )
    if ma and mb_:
        print(
            f"  malloc: arena bytes {mb(ma['arena'])} → {mb(mb_['arena'])} MB, in use "
            f"{mb(ma['uordblks'])} → {mb(mb_['uordblks'])} MB, free in arenas "
            f"{mb(ma['fordblks'])} → {mb(mb_['fordblks'])} MB, mmapped {mb(ma['hblkhd'])} → "
            f"{mb(mb_['hblkhd'])} MB",
            file=out,
        )
    pa, pb = a.get("pymalloc") or {}, b.get("pymalloc") or {}
    if pa and pb:
        print(
            f"  pymalloc: arenas {mb(pa['arenas'] << 20)} → {mb(pb['arenas'] << 20)} MB (peak "
            f"{mb(pb['arenas_peak'] << 20)}), in use {mb(pa['used_bytes'])} → "
            f"{mb(pb['used_bytes'])} MB, free in them {mb(pa['free_bytes'])} → "
            f"{mb(pb['free_bytes'])} MB",
            file=out,
        )
    if not d["traced"]:
        print("  (no allocation trace: served with 0 frames)", file=out)
    else:
        _print_growers(d, out)
    print("  live objects grown most (type: +n → n):", file=out)
    for name, grew, now in d["objects"]:
        if grew > 0:
            print(f"    {name}: {grew:+d} → {now}", file=out)


def _print_growers(d: dict[str, Any], out: Any) -> None:
    print("  grew most, by line (kB, blocks):", file=out)
    for s in d["by_line"]:
        print(
            f"    {s.size_diff / 1024:+9.1f} kB {s.count_diff:+7d}  {_frame(s.traceback[0])}",
            file=out,
        )
    print("  grew most, by traceback (innermost frame; and the innermost in app/):", file=out)
    for s in d["by_traceback"]:
        ours = _ours(s.traceback)
        inner = s.traceback[-1]  # a Traceback runs from the oldest frame to the newest
        print(f"    {s.size_diff / 1024:+9.1f} kB {s.count_diff:+7d}  {_frame(inner)}", file=out)
        if ours is not None and ours != inner:
            print(f"{'':32}← {_frame(ours)}", file=out)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("before", type=Path, help="stem of the first snapshot (without extension)")
    p.add_argument("after", type=Path, help="stem of the later snapshot")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    print_diff(diff(args.before, args.after, args.top))


if __name__ == "__main__":
    main(sys.argv[1:])
