"""Where photos live: the directory backend (today's layout) and the S3-compatible backend, the
latter against a real S3 protocol server (moto's server mode on a local port; boto3 unmocked)."""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pydantic import ValidationError
from sqlalchemy import text

from app.cases import photos, storage
from app.config import Settings, get_settings
from tests.api.test_cases import case_body
from tests.factories import category_code, point_in_grid
from tests.helpers import jpeg, problem

PREFIX = "wangge/photos"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(port: int) -> ThreadedMotoServer:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = _start(port)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _use_s3(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> tuple[Any, str]:
    """Point the app at a new bucket of `endpoint`; returns a client of our own and the bucket."""
    for var, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ):
        monkeypatch.setenv(var, value)
    bucket = f"wangge-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    s = get_settings()
    for name, value in (
        ("media_backend", "s3"),
        ("s3_endpoint_url", endpoint),
        ("s3_bucket", bucket),
        ("s3_prefix", PREFIX),
        ("s3_region", "us-east-1"),
        ("s3_addressing_style", "path"),
    ):
        monkeypatch.setattr(s, name, value)
    return client, bucket


def _objects(client: Any, bucket: str) -> dict[str, dict[str, Any]]:
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o for o in listed}


async def _case(anon, as_user, conn) -> tuple[dict[str, str], str]:
    lon, lat = await point_in_grid(conn, "360602001001001")
    h = as_user("worker")
    r = await anon.post(
        "/api/v1/cases",
        headers=h,
        json=case_body(
            await category_code(conn), lon, lat, occurred_at="2026-11-23T10:00:00+08:00"
        ),
    )
    assert r.status_code == 201, r.text
    return h, f"/api/v1/cases/{r.json()['id']}/attachments"


def _expected(data: bytes) -> photos.Photo:
    return photos.process(data, get_settings().max_image_pixels)


async def test_the_directory_backend_keeps_its_layout(
    anon, as_user, conn, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(get_settings(), "media_backend", "dir")
    monkeypatch.setattr(get_settings(), "media_dir", str(tmp_path))
    h, url = await _case(anon, as_user, conn)
    data = jpeg(colour=(11, 22, 33))
    r = await anon.post(url, headers=h, files={"files": ("a.jpg", data, "image/jpeg")})
    assert r.status_code == 201, r.text
    p = _expected(data)
    sha = hashlib.sha256(data).hexdigest()
    img = tmp_path / sha[:2] / f"{sha}.img"
    thumb = tmp_path / sha[:2] / f"{sha}.thumb.jpg"
    assert img.read_bytes() == p.served and thumb.read_bytes() == p.thumbnail
    # nothing else: no temporary file left behind
    assert sorted(x.relative_to(tmp_path).as_posix() for x in tmp_path.rglob("*")) == [
        sha[:2],
        f"{sha[:2]}/{sha}.img",
        f"{sha[:2]}/{sha}.thumb.jpg",
    ]
    assert [storage.DirStore(str(tmp_path)).path(k) for k in storage.keys(sha)] == [img, thumb]
    served = await anon.get(r.json()[0]["url"], headers=h)
    assert served.content == p.served and served.headers["etag"] == f'"{sha}"'
    # a file gone from the directory: 404 problem
    img.unlink()
    problem(await anon.get(r.json()[0]["url"], headers=h), 404, "attachment_file_missing")
    # a directory that cannot be written (here: a file stands where it should be): 503, no row
    blocked = tmp_path / "blocked"
    blocked.write_bytes(b"")
    monkeypatch.setattr(get_settings(), "media_dir", str(blocked))
    other = jpeg(colour=(44, 55, 66))
    problem(
        await anon.post(url, headers=h, files={"files": ("b.jpg", other, "image/jpeg")}),
        503,
        "storage_unavailable",
    )
    n = await conn.execute(
        text("SELECT count(*) FROM attachments WHERE sha256 = :s"),
        {"s": hashlib.sha256(other).hexdigest()},
    )
    assert n.scalar() == 0


async def test_photos_round_trip_through_s3(anon, as_user, conn, s3_server, monkeypatch) -> None:
    client, bucket = _use_s3(monkeypatch, s3_server)
    h, url = await _case(anon, as_user, conn)
    data = jpeg(colour=(200, 10, 90))
    sha = hashlib.sha256(data).hexdigest()
    p = _expected(data)

    # what the store sends: Content-Type and the body's MD5 (the server refuses a body cut short)
    sent: list[dict[str, str]] = []
    store = storage.media_store()
    assert isinstance(store, storage.S3Store)
    store.client.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **_: sent.append(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        ),
    )

    r = await anon.post(url, headers=h, files={"files": ("a.jpg", data, "image/jpeg")})
    assert r.status_code == 201, r.text
    [a] = r.json()
    img_key, thumb_key = f"{PREFIX}/{sha[:2]}/{sha}.img", f"{PREFIX}/{sha[:2]}/{sha}.thumb.jpg"
    objects = _objects(client, bucket)
    assert set(objects) == {img_key, thumb_key}
    for key, body, ctype in ((img_key, p.served, "image/jpeg"), (thumb_key, p.thumbnail, None)):
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == len(body)
        assert head["ContentType"] == (ctype or "image/jpeg")
        assert head["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert [(x.get("Content-Type"), x.get("Content-MD5")) for x in sent if "Content-MD5" in x] == [
        ("image/jpeg", base64.b64encode(hashlib.md5(body).digest()).decode())
        for body in (p.served, p.thumbnail)
    ]

    # served back byte for byte by the app, with the same headers as from a directory
    for link, body, etag in (
        (a["url"], p.served, sha),
        (a["thumbnail_url"], p.thumbnail, sha + "t"),
    ):
        got = await anon.get(link, headers=h)
        assert got.status_code == 200, got.text
        assert got.content == body
        assert got.headers["content-type"] == "image/jpeg"
        assert got.headers["content-length"] == str(len(body))
        assert got.headers["etag"] == f'"{etag}"'
        assert got.headers["cache-control"] == "private, max-age=86400"
        assert got.headers["x-content-type-options"] == "nosniff"
    # the policy layer still decides: another grid's worker gets nothing
    problem(await anon.get(a["url"], headers=as_user("worker2")), 404, "not_found")

    # again to the same step: nothing new; to another case: a new row, the same two objects
    sent.clear()
    r = await anon.post(url, headers=h, files={"files": ("again.jpg", data, "image/jpeg")})
    assert r.status_code == 200 and len(r.json()) == 1
    h2, url2 = await _case(anon, as_user, conn)
    r = await anon.post(url2, headers=h2, files={"files": ("b.jpg", data, "image/jpeg")})
    assert r.status_code == 201, r.text
    assert sent == []  # HEAD found both: no second upload
    assert _objects(client, bucket) == objects
    assert (await anon.get(r.json()[0]["url"], headers=h2)).content == p.served

    # an object gone from the bucket: 404 problem, the thumbnail still served
    client.delete_object(Bucket=bucket, Key=img_key)
    problem(await anon.get(a["url"], headers=h), 404, "attachment_file_missing")
    assert (await anon.get(a["thumbnail_url"], headers=h)).content == p.thumbnail


async def test_two_replicas_see_the_same_bucket(
    anon, as_user, conn, s3_server, monkeypatch
) -> None:
    client, bucket = _use_s3(monkeypatch, s3_server)
    h, url = await _case(anon, as_user, conn)
    data = jpeg(colour=(7, 170, 70))
    p = _expected(data)
    first = storage.media_store()
    r = await anon.post(url, headers=h, files={"files": ("a.jpg", data, "image/jpeg")})
    assert r.status_code == 201, r.text
    # another process: its own store and boto3 client, nothing shared but the bucket
    storage._s3.cache_clear()
    second = storage.media_store()
    assert isinstance(first, storage.S3Store) and isinstance(second, storage.S3Store)
    assert second is not first and second.client is not first.client
    got = await anon.get(r.json()[0]["url"], headers=h)
    assert got.status_code == 200 and got.content == p.served
    # and the other way round: written by a third store, served by the app's
    other = jpeg(colour=(1, 99, 250))
    third = storage.S3Store(bucket, PREFIX, s3_server, "us-east-1", "path")
    q = _expected(other)
    photos.store(third, q)
    assert first.client.get_object(Bucket=bucket, Key=third.key(storage.keys(q.sha256)[0]))[
        "Body"
    ].read() == (q.served)
    # uploading the same photo through the app finds it there: nothing uploaded again
    before = _objects(client, bucket)
    r = await anon.post(url, headers=h, files={"files": ("b.jpg", other, "image/jpeg")})
    assert r.status_code == 201, r.text
    assert _objects(client, bucket) == before
    newest = max(r.json(), key=lambda x: x["id"])
    assert (await anon.get(newest["url"], headers=h)).content == q.served


async def test_a_store_outage_is_503_and_no_row(anon, as_user, conn, monkeypatch) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = _start(port)
    try:
        client, bucket = _use_s3(monkeypatch, f"http://127.0.0.1:{port}")
        h, url = await _case(anon, as_user, conn)
        ok = await anon.post(
            url, headers=h, files={"files": ("a.jpg", jpeg(colour=(5, 5, 5)), "image/jpeg")}
        )
        assert ok.status_code == 201, ok.text
        server.stop()

        data = jpeg(colour=(250, 250, 5))
        sha = hashlib.sha256(data).hexdigest()
        t = time.perf_counter()
        r = await anon.post(url, headers=h, files={"files": ("b.jpg", data, "image/jpeg")})
        took = time.perf_counter() - t
        body = problem(r, 503, "storage_unavailable")
        assert r.headers["retry-after"] == "5"
        assert (
            "unavailable"
            in problem(
                await anon.post(
                    url,
                    headers={**h, "Accept-Language": "en"},
                    files={"files": ("b.jpg", data, "image/jpeg")},
                ),
                503,
                "storage_unavailable",
            )["title"]
        )
        assert body["title"] == "照片存储暂不可用，请稍后重试"
        case_id = int(url.split("/")[-2])
        shas = (
            await conn.execute(
                text("SELECT sha256 FROM attachments WHERE case_id = :c"), {"c": case_id}
            )
        ).scalars()
        assert sha not in set(shas)  # no row names a photo that was not stored
        # reading while the store is down: 503 too, never a 500
        problem(await anon.get(ok.json()[0]["url"], headers=h), 503, "storage_unavailable")
        print(f"\nupload answered 503 after {took:.2f} s with the store down")

        server = _start(port)  # the store is back (moto keeps its data in the process)
        r = await anon.post(url, headers=h, files={"files": ("b.jpg", data, "image/jpeg")})
        assert r.status_code == 201, r.text
        assert len(_objects(client, bucket)) == 4
        newest = max(r.json(), key=lambda x: x["id"])
        assert (await anon.get(newest["url"], headers=h)).content == _expected(data).served
    finally:
        server.stop()


def test_settings_refuse_an_s3_backend_without_a_bucket() -> None:
    with pytest.raises(ValidationError, match="WANGGE_S3_BUCKET"):
        Settings(media_backend="s3")
    for bad in (
        {"s3_bucket": "Not_A_Bucket"},
        {"s3_prefix": "../up"},
        {"s3_prefix": "/abs"},
        {"s3_endpoint_url": "ftp://x"},
        {"s3_max_attempts": 50},
        {"s3_read_timeout_seconds": 0},
    ):
        with pytest.raises(ValidationError):
            Settings(media_backend="s3", **{"s3_bucket": "media", **bad})
    ok = Settings(media_backend="s3", s3_bucket="media", s3_prefix="a/b", s3_endpoint_url="")
    assert ok.s3_prefix == "a/b"
    with pytest.raises(ValueError):
        storage.keys("../../etc/passwd")
