"""Peak memory of 20 parallel worst-case photo uploads (issue 17, target < 100 MB above idle),
decoded by the upload path's own function (`app.cases.photos.decode`), 20 at once:

- a PNG of a few KB as large as the memory budget lets through alone (`image_decode_memory_mb`,
  16 MP at 96 MB), the worst a format without scaled decoding can do;
- a flat JPEG just under the pixel cap (`max_image_pixels`, 40 MP), decoded at a reduced scale.

Each run is a fresh process (the operating system's high-water mark `VmHWM` is per process):
`bounded` with the settings' defaults (2 decodes at a time, the 96 MB budget) and `unbounded`
(20 at a time and a budget that never binds, as before the limits). Printed: idle RSS, peak RSS
and the peak above idle for each, and the ratio. Nothing is asserted (it depends on the machine).

    .venv/bin/python bench/bench_upload_rss.py [--quick]   # --quick: the PNG only
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
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


def worst_case_jpeg(pixels: int) -> bytes:
    """A flat JPEG just under the pixel cap (a few hundred KB): decoded at a reduced scale."""
    from PIL import Image

    side = int(pixels**0.5) - 16
    out = io.BytesIO()
    Image.new("RGB", (side, side), (90, 120, 150)).save(out, "JPEG", quality=50)
    return out.getvalue()


def child(concurrency: int, budget_mb: int, path: str) -> None:
    os.environ["WANGGE_IMAGE_DECODE_CONCURRENCY"] = str(concurrency)
    os.environ["WANGGE_IMAGE_DECODE_MEMORY_MB"] = str(budget_mb)
    import anyio

    from app.cases import photos
    from app.config import get_settings

    data = Path(path).read_bytes()
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
                "concurrency": get_settings().image_decode_concurrency,
                "budget_mb": get_settings().image_decode_memory_mb,
            }
        )
    )


def run(concurrency: int, budget_mb: int, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(concurrency), str(budget_mb), str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        child(int(sys.argv[i + 1]), int(sys.argv[i + 2]), sys.argv[i + 3])
        return
    from app.cases.photos import cost
    from app.config import Settings

    quick = "--quick" in sys.argv
    fields = Settings.model_fields
    concurrency = int(fields["image_decode_concurrency"].default)
    budget_mb = int(fields["image_decode_memory_mb"].default)
    max_pixels = int(fields["max_image_pixels"].default)
    # the largest PNG the budget lets through alone, and the largest JPEG the cap lets through
    png_pixels = int(budget_mb * 1_048_576 / cost(1, 1, "image/png"))
    cases = [("PNG", worst_case_png(png_pixels), png_pixels)]
    if not quick:
        cases.append(("JPEG", worst_case_jpeg(max_pixels), max_pixels))
    with tempfile.TemporaryDirectory() as tmp:
        for kind, data, pixels in cases:
            path = Path(tmp) / kind
            path.write_bytes(data)
            bounded = run(concurrency, budget_mb, path)
            unbounded = run(PARALLEL, 4096, path)
            print(
                f"{PARALLEL} parallel uploads of a {pixels / 1e6:.0f} MP {kind} "
                f"({len(data) / 1024:.0f} KB each):"
            )
            for name, r in (("bounded", bounded), ("unbounded", unbounded)):
                above = (r["peak_kb"] - r["idle_kb"]) / 1024
                print(
                    f"  {name:9} ({r['concurrency']:.0f} decodes, {r['budget_mb']:.0f} MB budget): "
                    f"idle {r['idle_kb'] / 1024:.0f} MB, peak {r['peak_kb'] / 1024:.0f} MB, "
                    f"+{above:.0f} MB above idle (target < 100), {r['seconds']:.1f} s"
                )
            b = bounded["peak_kb"] - bounded["idle_kb"]
            u = unbounded["peak_kb"] - unbounded["idle_kb"]
            print(f"  peak above idle, bounded / unbounded: {b / u:.2f}")


if __name__ == "__main__":
    main()
