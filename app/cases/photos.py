"""Photos: sniff the content (never trust the name or the declared type), refuse bombs and
broken files, read EXIF time and GPS, store an EXIF-free copy and a thumbnail by content hash."""

from __future__ import annotations

import hashlib
import io
import warnings
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


def process(data: bytes, max_pixels: int) -> Photo:
    """Everything CPU-bound about a photo; call it in a worker thread."""
    if not data:
        raise _refuse("文件为空", "The file is empty")
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
                raise _refuse(
                    "图片像素过多（疑似解压炸弹）", "Too many pixels (a decompression bomb?)"
                )
            probe.verify()
            img = Image.open(io.BytesIO(data))
            img.load()
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(
            "图片像素过多（疑似解压炸弹）", "Too many pixels (a decompression bomb?)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise _refuse(
            "文件不是完整有效的图片", f"Not a complete, valid image ({type(e).__name__})"
        ) from None
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
