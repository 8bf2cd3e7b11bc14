"""Peak memory of 20 parallel worst-case photo uploads (issue 17): images as large as the pixel
cap allows (`max_image_pixels`, 40 MP) in a few KB each, decoded by the upload path's own
function (`app.cases.photos.decode`: the bounded worker), 20 at once.

Each run is a fresh process (the operating system's high-water mark `VmHWM` is per process):
`bounded` with the setting's default (`image_decode_concurrency`, 2 decodes at a time) and
`unbounded` (20 at a time, as before the limiter). Printed: idle RSS, peak RSS and the peak above
idle for each, and the ratio. Nothing is asserted (the figure depends on the machine).

    .venv/bin/python bench/bench_upload_rss.py [--quick]
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARALLEL = 20


def _kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def worst_case_png(pixels: int) -> bytes:
    """A valid RGB PNG just under the pixel cap, a few KB (flat rows deflate to nothing)."""
    side = int(pixels**0.5) - 1
    raw = zlib.compress(b"\0" * (side * 3 + 1) * side, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def child(concurrency: int, quick: bool) -> None:
    os.environ["WANGGE_IMAGE_DECODE_CONCURRENCY"] = str(concurrency)
    if quick:
        os.environ["WANGGE_MAX_IMAGE_PIXELS"] = "10000000"
    import anyio

    from app.cases import photos
    from app.config import get_settings

    data = worst_case_png(get_settings().max_image_pixels)
    idle = _kb("VmRSS")

    async def burst() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(PARALLEL):
                tg.start_soon(photos.decode, data)

    started = time.perf_counter()
    anyio.run(burst)
    print(
        json.dumps(
            {
                "idle_kb": idle,
                "peak_kb": _kb("VmHWM"),
                "seconds": time.perf_counter() - started,
                "bytes": len(data),
                "pixels": get_settings().max_image_pixels,
                "concurrency": get_settings().image_decode_concurrency,
            }
        )
    )


def run(concurrency: int, quick: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(concurrency)] + (["--quick"] if quick else []),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    quick = "--quick" in sys.argv
    if "--child" in sys.argv:
        child(int(sys.argv[sys.argv.index("--child") + 1]), quick)
        return
    from app.config import Settings

    default = Settings.model_fields["image_decode_concurrency"].default
    bounded, unbounded = run(default, quick), run(PARALLEL, quick)
    print(
        f"{PARALLEL} parallel uploads of a {bounded['pixels'] / 1e6:.0f} MP PNG "
        f"({bounded['bytes'] / 1024:.0f} KB each):"
    )
    for name, r in (("bounded", bounded), ("unbounded", unbounded)):
        above = (r["peak_kb"] - r["idle_kb"]) / 1024
        print(
            f"  {name:9} ({r['concurrency']:.0f} decodes at a time): idle {r['idle_kb'] / 1024:.0f} MB, "
            f"peak {r['peak_kb'] / 1024:.0f} MB, +{above:.0f} MB above idle, {r['seconds']:.1f} s"
        )
    b = bounded["peak_kb"] - bounded["idle_kb"]
    u = unbounded["peak_kb"] - unbounded["idle_kb"]
    print(f"  peak above idle, bounded / unbounded: {b / u:.2f}")


if __name__ == "__main__":
    main()
