"""BENCH ONLY, never serve it: `app.main.app` under tracemalloc, snapshotted on SIGUSR1.

bench/bench_soak.py serves this with ``--trace`` (``uvicorn --app-dir bench _traced_app:app``):
the same app, with Python's allocation tracer on from just after the app is imported (tracing
the imports too would slow the start past the bench's patience; they are not what grows), with
``WANGGE_BENCH_TRACE_FRAMES`` frames per allocation (default 25; 0: no tracer, only the totals
and the object counts below, at no cost to the app's speed). Each SIGUSR1 collects garbage,
then writes into ``WANGGE_BENCH_TRACE_DIR`` (default bench/out):

* ``trace-<pid>-<n>.tracemalloc``: the tracemalloc snapshot (``tracemalloc.Snapshot.load``),
  when tracing;
* ``trace-<pid>-<n>.json``: the traced total, the process's RSS (anonymous and file-backed),
  glibc's malloc totals (``mallinfo2``: arena bytes in use and free, mmapped bytes), Python's
  small-object arenas (used and free bytes in them), the thread
  count, the open event streams and the live objects per type (``gc.get_objects``), for a diff
  by bench/trace_diff.py.

The file ``trace-<pid>-<n>.done`` appears when both are written (the bench waits for it).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

OUT = Path(os.environ.get("WANGGE_BENCH_TRACE_DIR", Path(__file__).resolve().parent / "out"))
_taken = 0


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # non-mmapped bytes obtained from the system (all arenas)
            "ordblks",
            "smblks",
            "hblks",  # mmapped chunks
            "hblkhd",  # mmapped bytes
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use (non-mmapped)
            "fordblks",  # free bytes held in the arenas
            "keepcost",
        )
    ]


def mallinfo() -> dict[str, int]:
    """glibc's malloc totals over every arena (empty when not glibc >= 2.33)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _Mallinfo2
    m = fn()
    return {name: int(getattr(m, name)) for name, *_ in _Mallinfo2._fields_}


def pymalloc() -> dict[str, int]:
    """Python's small-object allocator (objects up to 512 bytes, in 1 MiB arenas it maps itself,
    outside malloc): arenas now, at most, and the bytes in blocks in use and free in them (read
    from ``sys._debugmallocstats``, which writes to the C stderr)."""
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode(errors="replace")
    keys = {
        "# arenas allocated current": "arenas",
        "# arenas highwater mark": "arenas_peak",
        "# bytes in allocated blocks": "used_bytes",
        "# bytes in available blocks": "free_bytes",
    }
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip() in keys:
            out[keys[name.strip()]] = int(value.strip().replace(",", ""))
    return out


def _status_kb() -> dict[str, int]:
    """Resident memory (kB): all, anonymous (the heap), file-backed (code and data of loaded
    libraries, paged in as they are first used)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


def _arenas() -> int:
    """Heap mappings of glibc's secondary arenas (64 MB reserved each) in /proc/self/maps."""
    n = 0
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        lo = int(parts[0].split("-")[0], 16)
        # A thread arena is a 64 MB-aligned reservation: rw part + ---p remainder.
        if len(parts) == 5 and lo % (64 << 20) == 0 and "rw" in parts[1]:
            n += 1
    return n


def snapshot() -> Path:
    global _taken
    _taken += 1
    gc.collect()
    stem = OUT / f"trace-{os.getpid()}-{_taken}"
    t0 = time.perf_counter()
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(stem) + ".tracemalloc")
    types: Counter[str] = Counter(type(o).__qualname__ for o in gc.get_objects())
    traced, peak = tracemalloc.get_traced_memory()
    info: dict[str, Any] = {
        "pid": os.getpid(),
        "n": _taken,
        "traced_bytes": traced,
        "traced_peak_bytes": peak,
        **{k.lower() + "_kb": v for k, v in _status_kb().items()},
        "sse_subscribers": hub.subscribers,
        "mallinfo": mallinfo(),
        "pymalloc": pymalloc(),
        "thread_arenas": _arenas(),
        "threads": threading.active_count(),
        "snapshot_s": round(time.perf_counter() - t0, 2),
        "objects": dict(types.most_common()),
    }
    Path(str(stem) + ".json").write_text(json.dumps(info, indent=1))
    Path(str(stem) + ".done").touch()
    return stem


def _on_usr1(_signum: int, _frame: FrameType | None) -> None:
    snapshot()


OUT.mkdir(parents=True, exist_ok=True)
signal.signal(signal.SIGUSR1, _on_usr1)

from app.events.stream import hub  # noqa: E402
from app.main import app  # noqa: E402

FRAMES = int(os.environ.get("WANGGE_BENCH_TRACE_FRAMES", "25"))
if FRAMES > 0:
    tracemalloc.start(FRAMES)

__all__ = ["app"]
