"""Two app processes (replicas) on the S3 backend and one S3-compatible server (moto's server
mode on a local port; boto3 unmocked): a photo uploaded through one replica is served by the
other byte for byte, and sending it again through the other uploads nothing. Real commits on the
test database (the processes have their own pools), removed afterwards."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from pathlib import Path

import boto3
import httpx
from moto.server import ThreadedMotoServer
from sqlalchemy import text

from app.cases import photos
from app.config import get_settings
from tests.factories import DEMO_GRID, category_code, point_in_grid
from tests.helpers import jpeg
from tests.reliability.live import Server, free_port

TAG = "S3-REPLICAS"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


async def test_two_processes_share_one_bucket(engine, tokens, tmp_path: Path) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"wangge-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    unused = tmp_path / "media"
    env = {
        **CREDENTIALS,
        "ENV": "test",  # no clock, no webhook sender: the test database is shared
        "WANGGE_RATE_LIMITS": "false",
        "WANGGE_MEDIA_BACKEND": "s3",
        "WANGGE_MEDIA_DIR": str(unused),
        "WANGGE_S3_ENDPOINT_URL": endpoint,
        "WANGGE_S3_BUCKET": bucket,
        "WANGGE_S3_PREFIX": "photos",
        "WANGGE_S3_REGION": "us-east-1",
        "WANGGE_S3_ADDRESSING_STYLE": "path",
    }
    url = os.environ["TEST_DATABASE_URL"]
    servers = [Server(url, env, log=tmp_path / f"app{i}.log") for i in range(2)]
    try:
        await asyncio.gather(*(asyncio.to_thread(s.start) for s in servers))
        a, b = (s.base for s in servers)
        h = {"Authorization": f"Bearer {tokens['worker']}"}
        async with engine.connect() as c:
            lon, lat = await point_in_grid(c, DEMO_GRID)
            cat = await category_code(c)
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(
                f"{a}/api/v1/cases",
                headers=h,
                json={
                    "category": cat,
                    "title": f"{TAG} photo",
                    "location": {"lon": lon, "lat": lat},
                },
            )
            assert r.status_code == 201, r.text
            case_id = r.json()["id"]
            data = jpeg(colour=(90, 140, 10))
            sha = hashlib.sha256(data).hexdigest()
            p = photos.process(data, get_settings().max_image_pixels)

            up = await http.post(
                f"{a}/api/v1/cases/{case_id}/attachments",
                headers=h,
                files={"files": ("a.jpg", data, "image/jpeg")},
            )
            assert up.status_code == 201, up.text
            [att] = up.json()
            keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
            assert keys == {f"photos/{sha[:2]}/{sha}.img", f"photos/{sha[:2]}/{sha}.thumb.jpg"}

            # the other replica serves it, byte for byte, with the same headers
            for link, body, etag in (
                (att["url"], p.served, sha),
                (att["thumbnail_url"], p.thumbnail, sha + "t"),
            ):
                got = await http.get(f"{b}{link}", headers=h)
                assert got.status_code == 200, got.text
                assert got.content == body
                assert got.headers["etag"] == f'"{etag}"'
                assert got.headers["content-type"] == "image/jpeg"
                assert got.headers["x-content-type-options"] == "nosniff"

            # the phone retries on the other replica: nothing new, nothing uploaded again
            before = client.list_objects_v2(Bucket=bucket)["Contents"]
            again = await http.post(
                f"{b}/api/v1/cases/{case_id}/attachments",
                headers=h,
                files={"files": ("a.jpg", data, "image/jpeg")},
            )
            assert again.status_code == 200 and [x["id"] for x in again.json()] == [att["id"]]
            assert client.list_objects_v2(Bucket=bucket)["Contents"] == before
        assert not unused.exists()  # nothing went to a local directory
    finally:
        for s in servers:
            s.stop()
        s3.stop()
        async with engine.begin() as c:
            await c.execute(text("DELETE FROM cases WHERE title LIKE :t"), {"t": TAG + "%"})
