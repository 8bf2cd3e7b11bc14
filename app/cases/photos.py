"""Photos: sniff the content (never trust the name or the declared type), refuse bombs and
broken files, read EXIF time and GPS, store an EXIF-free copy and a thumbnail by content hash."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import anyio
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from app.cases.storage import MediaStore, keys
from app.config import get_settings
from app.errors import ApiError

register_heif_opener()
ImageFile.LOAD_TRUNCATED_IMAGES = False
SHANGHAI = ZoneInfo("Asia/Shanghai")

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "unsupported_image": (
        415,
        "只接受 JPEG、PNG、HEIC 或 WebP 照片",
        "Only JPEG, PNG, HEIC or WebP photos are accepted",
    ),
    "too_many_photos": (
        409,
        "该步骤的照片已达上限",
        "This step already has the most photos allowed",
    ),
}
"""This module's error codes (registered in `app.extensions`)."""

# Pillow format → the media type we serve (HEIC is served as JPEG: browsers cannot show it).
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/jpeg"}
THUMB = 320
_PIXEL_INFO = ("transparency",)


@dataclass
class Photo:
    sha256: str
    media_type: str
    width: int
    height: int
    size: int
    taken_at: datetime | None = None
    lon: float | None = None
    lat: float | None = None
    served: bytes = b""
    thumbnail: bytes = b""
    flags: list[str] = field(default_factory=list)


def _refuse(detail: str, detail_en: str) -> ApiError:
    return ApiError("unsupported_image", detail=detail, detail_en=detail_en, field="file")


def _rational(v: object) -> float:
    if isinstance(v, tuple):
        return float(v[0]) / float(v[1]) if v[1] else 0.0
    return float(v)  # type: ignore[arg-type]


def _gps(exif: Image.Exif) -> tuple[float, float] | None:
    gps = exif.get_ifd(0x8825)
    try:
        lat = sum(_rational(x) / 60**i for i, x in enumerate(gps[2]))
        lon = sum(_rational(x) / 60**i for i, x in enumerate(gps[4]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if gps.get(1) == "S":
        lat = -lat
    if gps.get(3) == "W":
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lon, lat


def _taken_at(exif: Image.Exif) -> datetime | None:
    sub = exif.get_ifd(0x8769)
    raw = sub.get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, else DateTime
    if not isinstance(raw, str):
        return None
    try:
        t = datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = sub.get(0x9011)  # OffsetTimeOriginal, e.g. "+08:00"
    if isinstance(offset, str):
        try:
            return datetime.fromisoformat(t.isoformat() + offset.strip("\x00 "))
        except ValueError:
            pass
    return t.replace(tzinfo=SHANGHAI)  # phones sold in China write local time


BYTES_PER_PIXEL = 4.75
"""What a decode holds per pixel: Pillow's pixels (RGB is stored as RGBX, 4 bytes) and the
thumbnail's reduced copy (measured with /proc/self/status's VmHWM, one decode a process)."""
ENCODER_BYTES_PER_PIXEL = {"image/jpeg": 3.0, "image/webp": 6.0, "image/png": 0.0}
"""What the served copy's encoder adds: libjpeg's optimised Huffman tables keep every DCT
coefficient (4:2:0, 2 bytes each), libwebp its ARGB and YUV planes; zlib streams."""


class MemoryBudget:
    """Bytes of decoded pixels a process holds at once (`image_decode_memory_mb`), shared by the
    decoding threads: a decode waits until its estimate fits beside the others (one too big to
    fit beside any runs alone, so nothing waits forever). A thread primitive, not an event
    loop's: the threads of every loop share one budget."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, amount: int) -> Iterator[None]:
        with self._cond:
            while self.used and self.used + amount > self.total:
                self._cond.wait()
            self.used += amount
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= amount
                self._cond.notify_all()


_budget: MemoryBudget | None = None


def _return_freed_blocks() -> None:
    """Freed pixels go back to the system at once. glibc serves Pillow's 16 MB blocks from
    per-thread arenas once its mmap threshold has risen (it does after the first free) and keeps
    them there: two decoding threads then hold two decodes' worth of memory for good (measured:
    +136 MB for one 17 MP PNG at a time). A fixed 1 MB threshold maps large blocks and unmaps
    them on free. Nothing happens on a C library without `mallopt`."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 1 << 20)


_M_MMAP_THRESHOLD = -3
_return_freed_blocks()


def budget() -> MemoryBudget:
    global _budget
    if _budget is None:
        _budget = MemoryBudget(get_settings().image_decode_memory_mb * 1_048_576)
    return _budget


def cost(width: int, height: int, media_type: str = "image/jpeg") -> int:
    """The estimated peak bytes of decoding an image of this size and encoding its served copy
    (of `media_type`)."""
    return int(width * height * (BYTES_PER_PIXEL + ENCODER_BYTES_PER_PIXEL[media_type]))


def _too_many_pixels() -> ApiError:
    return _refuse("图片像素过多（疑似解压炸弹）", "Too many pixels (a decompression bomb?)")


def _draft(img: Image.Image, total: int) -> None:
    """A JPEG larger than the budget is decoded at 1/2, 1/4 or 1/8 of its size (the DCT's own
    scaling, no full-size copy ever exists): the largest scale whose pixels fit the budget.
    The served copy of a 40 MP photo is then 10 MP, of a 48 MP phone photo 12 MP."""
    for scale in (1, 2, 4, 8):
        w, h = -(-img.width // scale), -(-img.height // scale)
        if cost(w, h) <= total or scale == 8:  # the last scale: refused if it does not fit
            if scale > 1:
                img.draft(img.mode, (w, h))
            return


def process(data: bytes, max_pixels: int, memory: MemoryBudget | None = None) -> Photo:
    """Everything CPU-bound about a photo; call it in a worker thread. The decode holds its
    estimated memory in the process's budget (`memory`, default `budget()`); a JPEG larger than
    the budget is decoded at a reduced scale, any other format that alone exceeds it is refused
    as too many pixels."""
    if not data:
        raise _refuse("文件为空", "The file is empty")
    memory = memory or budget()
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            fmt = probe.format or ""
            if fmt not in FORMATS:
                raise _refuse(
                    f"不支持的图片格式：{fmt or '未知'}", f"Unsupported format: {fmt or 'unknown'}"
                )
            if probe.width * probe.height > max_pixels:
                raise _too_many_pixels()
            probe.verify()
            img = Image.open(io.BytesIO(data))
            if fmt == "JPEG":
                _draft(img, memory.total)
            need = cost(img.width, img.height, FORMATS[fmt])
            if need > memory.total:
                raise _too_many_pixels()
            with memory.hold(need):
                img.load()
                return _finish(img, data, fmt)
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels() from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise _refuse(
            "文件不是完整有效的图片", f"Not a complete, valid image ({type(e).__name__})"
        ) from None


def _finish(img: Image.Image, data: bytes, fmt: str) -> Photo:
    """The decoded image's metadata, its served copy and its thumbnail (inside the budget)."""
    exif = img.getexif()
    photo = Photo(
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=FORMATS[fmt],
        width=img.width,
        height=img.height,
        size=len(data),
        taken_at=_taken_at(exif),
    )
    where = _gps(exif)
    if where:
        photo.lon, photo.lat = where
    # The served copy: orientation applied, re-encoded from the pixels alone. Pillow copies a
    # JPEG comment (COM), XMP and the ICC profile from `info` into what it saves, so `info` is
    # emptied but for what the pixels need (a palette's transparency): no EXIF (no GPS, no
    # device), no COM or APPn segment, no PNG text chunk, no WebP EXIF/XMP chunk survives.
    # In place, and no copy where none is needed: one decoded image in memory at a time.
    ImageOps.exif_transpose(img, in_place=True)
    clean = img
    clean.info = {k: v for k, v in clean.info.items() if k in _PIXEL_INFO}
    out = io.BytesIO()
    if photo.media_type == "image/png":
        clean.save(out, "PNG", optimize=True)
    elif photo.media_type == "image/webp":
        clean.save(out, "WEBP", quality=88)
    else:
        (clean if clean.mode in ("RGB", "L") else clean.convert("RGB")).save(
            out, "JPEG", quality=88, optimize=True
        )
    photo.served = out.getvalue()
    photo.width, photo.height = clean.size
    scale = min(1.0, THUMB / max(clean.size))
    size = (max(1, round(clean.width * scale)), max(1, round(clean.height * scale)))
    small = clean if clean.mode in ("RGB", "RGBA", "L", "LA", "P") else clean.convert("RGB")
    thumb = small.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if thumb.mode != "RGB":
        thumb = thumb.convert("RGB")
    thumb.info = {}
    tout = io.BytesIO()
    thumb.save(tout, "JPEG", quality=80)
    photo.thumbnail = tout.getvalue()
    return photo


_decoders: anyio.CapacityLimiter | None = None


def _limiter() -> anyio.CapacityLimiter:
    """Decodes a process runs at once (`image_decode_concurrency`): what a burst of uploads
    costs in memory is bounded by this many decoded images, however many requests wait."""
    global _decoders
    if _decoders is None:
        _decoders = anyio.CapacityLimiter(get_settings().image_decode_concurrency)
    return _decoders


async def decode(data: bytes) -> Photo:
    """`process` in a bounded worker thread, with the configured pixel cap."""
    pixels = get_settings().max_image_pixels
    return await anyio.to_thread.run_sync(process, data, pixels, limiter=_limiter())


def store(media: MediaStore, photo: Photo) -> None:
    """Content-addressed: the same photo uploaded twice is stored once. Blocking (a thread)."""
    img, thumb = keys(photo.sha256)
    media.put_once(img, photo.served, photo.media_type)
    media.put_once(thumb, photo.thumbnail, "image/jpeg")
