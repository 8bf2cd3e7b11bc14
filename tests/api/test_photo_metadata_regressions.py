"""Issue 17, photos: the JPEG comment segment (COM) survived stripping (a `<?php … ?>` comment came
back on download and in the thumbnail). What is served, the photo and its thumbnail, carries the
pixels only: no COM, no APPn but the JFIF header the encoder writes (no EXIF, no XMP, no ICC), no
PNG text chunk, no WebP EXIF/XMP chunk. And images are bounded by decoded pixels (a 57 KB PNG of
7700×7700 was accepted) and by the decodes a process runs at once."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import httpx
from PIL import Image, PngImagePlugin

from app.cases import photos
from app.config import get_settings
from tests.factories import point_in_grid, report_case
from tests.helpers import problem

PHP = b"<?php system($_GET['c']); ?>"
XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b"<rdf:Description GPSLatitude='28,14.4N' secret='" + PHP + b"'/></x:xmpmeta>"
)
# A tiny ICC-like blob: Pillow carries `icc_profile` through as bytes
ICC = b"\x00\x00\x02\x0cICC-PROFILE-" + PHP


def _jpeg_segments(data: bytes) -> list[int]:
    """The markers of a JPEG up to its scan."""
    assert data[:2] == b"\xff\xd8"
    out, i = [], 2
    while i < len(data):
        assert data[i] == 0xFF, i
        marker = data[i + 1]
        out.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return out


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        out.append(data[i + 4 : i + 8])
        i += 12 + length
    return out


def _webp_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    out, i = [], 12
    while i < len(data):
        kind = data[i : i + 4]
        (length,) = struct.unpack("<I", data[i + 4 : i + 8])
        out.append(kind)
        i += 8 + length + (length & 1)
    return out


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "TestPhone"
    exif[0x010E] = PHP.decode()  # ImageDescription
    return exif.tobytes()


def hostile_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 40)).save(
        out, "JPEG", comment=PHP, exif=_exif(), xmp=XMP, icc_profile=ICC
    )
    data = out.getvalue()
    assert PHP in data and b"Exif" in data and b"adobe:ns:meta" in data
    return data


def hostile_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", PHP.decode())
    info.add_text("XML:com.adobe.xmp", XMP.decode(), zip=False)
    info.add_itxt("Description", PHP.decode(), zip=True)
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(
        out, "PNG", pnginfo=info, exif=_exif(), icc_profile=ICC
    )
    data = out.getvalue()
    assert PHP in data
    return data


def hostile_webp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 160, 90)).save(out, "WEBP", exif=_exif(), xmp=XMP)
    data = out.getvalue()
    assert b"EXIF" in data and b"XMP " in data
    return data


def _assert_pixels_only(data: bytes, media_type: str) -> None:
    for needle in (PHP, b"<?php", b"TestPhone", b"adobe:ns:meta", b"ICC-PROFILE", b"Exif\0\0"):
        assert needle not in data, (needle, media_type)
    if media_type == "image/jpeg":
        markers = _jpeg_segments(data)
        # SOI is not listed; APP0 (JFIF) is the encoder's; DQT, SOF, DHT, SOS; nothing else
        assert set(markers) <= {0xE0, 0xDB, 0xC0, 0xC2, 0xC4, 0xDD, 0xDA}, [hex(m) for m in markers]
        assert 0xFE not in markers  # COM
    elif media_type == "image/png":
        chunks = set(_png_chunks(data))
        assert chunks <= {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}, chunks
    elif media_type == "image/webp":
        chunks = set(_webp_chunks(data))
        assert chunks <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}, chunks
    else:
        raise AssertionError(media_type)


def test_process_strips_every_metadata_segment() -> None:
    for data, media_type in (
        (hostile_jpeg(), "image/jpeg"),
        (hostile_png(), "image/png"),
        (hostile_webp(), "image/webp"),
    ):
        photo = photos.process(data, get_settings().max_image_pixels)
        assert photo.media_type == media_type
        _assert_pixels_only(photo.served, media_type)
        _assert_pixels_only(photo.thumbnail, "image/jpeg")


async def test_no_comment_survives_download_or_thumbnail(
    anon: httpx.AsyncClient, as_user: Any, conn: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(get_settings(), "media_dir", str(tmp_path))
    case = await report_case(anon, as_user, conn)
    h = as_user("worker")
    files = [
        ("files", ("a.jpg", hostile_jpeg(), "image/jpeg")),
        ("files", ("b.png", hostile_png(), "image/png")),
        ("files", ("c.webp", hostile_webp(), "image/webp")),
    ]
    r = await anon.post(f"/api/v1/cases/{case['id']}/attachments", headers=h, files=files)
    assert r.status_code == 201, r.text
    rows = r.json()
    assert {a["media_type"] for a in rows} == {"image/jpeg", "image/png", "image/webp"}
    for a in rows:
        full = await anon.get(f"/api/v1/attachments/{a['id']}", headers=h)
        assert full.status_code == 200, full.text
        _assert_pixels_only(full.content, a["media_type"])
        thumb = await anon.get(f"/api/v1/attachments/{a['id']}/thumbnail", headers=h)
        assert thumb.status_code == 200
        _assert_pixels_only(thumb.content, "image/jpeg")
    # nothing of it on disk either
    for stored in tmp_path.rglob("*"):
        if stored.is_file():
            assert PHP not in stored.read_bytes(), stored


def _flat_png(width: int, height: int) -> bytes:
    """A valid grey PNG of any size, a few KB (rows of zeros deflate to nothing)."""
    raw = zlib.compress(b"\0" * (width + 1) * height, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


async def test_decoded_pixels_are_capped(
    anon: httpx.AsyncClient, as_user: Any, conn: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(get_settings(), "media_dir", str(tmp_path))
    assert get_settings().max_image_pixels == 40_000_000  # 40 MP by default
    bomb = _flat_png(7700, 7700)  # 59 MP in 57 KB: accepted before (the cap was 60 MP)
    assert len(bomb) < 100_000
    case = await report_case(anon, as_user, conn)
    r = await anon.post(
        f"/api/v1/cases/{case['id']}/attachments",
        headers=as_user("worker"),
        files={"files": ("bomb.png", bomb, "image/png")},
    )
    assert problem(r, 415, "unsupported_image")["field"] == "file"
    await point_in_grid(conn)


async def test_decodes_per_process_are_bounded() -> None:
    limiter = photos._limiter()
    assert limiter.total_tokens == get_settings().image_decode_concurrency
    # a burst waits for the limiter: never more decodes at once than its tokens
    import anyio

    running = peak = 0
    real = photos.process

    def counting(data: bytes, pixels: int) -> photos.Photo:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            import time

            time.sleep(0.02)
            return real(data, pixels)
        finally:
            running -= 1

    photos.process = counting  # type: ignore[assignment]
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(photos.decode, hostile_jpeg())
    finally:
        photos.process = real  # type: ignore[assignment]
    assert 1 <= peak <= limiter.total_tokens
