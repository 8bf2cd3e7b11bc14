"""Where photos live: one small interface, two backends, chosen by `WANGGE_MEDIA_BACKEND`.

- `DirStore` (`dir`, the default): a local or shared directory (NFS, CephFS, a cloud file share),
  `<WANGGE_MEDIA_DIR>/<sha[:2]>/<sha>.img` and `.thumb.jpg`, each written once (a temporary file,
  fsync, rename) before the row that names it commits; served from the file.
- `S3Store` (`s3`): an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Aliyun OSS, Tencent COS),
  the same keys under `WANGGE_S3_PREFIX`; written once (HEAD: there already, nothing to do; else
  PUT with Content-Type and Content-MD5, so a body cut short is refused by the server), streamed
  back through the app (the one policy layer still decides who sees a photo). Credentials come
  from the standard AWS chain (environment, shared files, instance roles) and are never logged.

Keys come from the content hash only, never from the client. Every method blocks: call it in a
worker thread (`anyio.to_thread`). A store that cannot be reached (or refuses us) raises
`ApiError("storage_unavailable")` (503, Retry-After); a missing object is `None`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from starlette.responses import FileResponse, Response, StreamingResponse

from app.config import get_settings
from app.errors import ApiError

log = logging.getLogger("wangge.storage")

CHUNK = 64 * 1024
HEX = frozenset("0123456789abcdef")


def keys(sha: str) -> tuple[str, str]:
    """The keys of a photo and its thumbnail: derived from the hash only."""
    if len(sha) != 64 or not set(sha) <= HEX:
        raise ValueError("not a sha256")
    return f"{sha[:2]}/{sha}.img", f"{sha[:2]}/{sha}.thumb.jpg"


def unavailable(why: object) -> ApiError:
    log.warning("media store unavailable: %s", why)
    return ApiError(
        "storage_unavailable",
        detail="照片存储暂不可用，请稍后重试",
        detail_en="The photo store is unavailable, retry later",
        headers={"Retry-After": "5"},
    )


class MediaStore(Protocol):
    def put_once(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key` unless it is there already; durable when this returns."""

    def response(self, key: str, media_type: str, headers: dict[str, str]) -> Response | None:
        """The object as an HTTP response with these headers; None when there is no object."""


class DirStore:
    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def put_once(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        if path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # on disk before the row that names it commits
            os.replace(tmp, path)
        except OSError as e:  # disk full, a shared mount gone: the client retries later
            raise unavailable(f"{type(e).__name__}: {e}") from None

    def response(self, key: str, media_type: str, headers: dict[str, str]) -> Response | None:
        path = self.path(key)
        if not path.exists():
            return None
        return FileResponse(path, media_type=media_type, headers=headers)


_client_lock = threading.Lock()


class S3Store:
    """One bucket (and prefix) of an S3-compatible store; one boto3 client per instance (boto3
    clients are thread-safe; the connection pool is shared by the worker threads)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing_style: str = "auto",
        connect_timeout: float = 3,
        read_timeout: float = 10,
        max_attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self.addressing_style = addressing_style
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts

    @cached_property
    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        with _client_lock:  # boto3 sessions are not thread-safe; one client per store
            return boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url or None,
                region_name=self.region or None,
                config=Config(
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
                    s3={"addressing_style": self.addressing_style},
                    max_pool_connections=20,
                    # Content-MD5 is what every S3-compatible server checks; the newer default
                    # CRC trailers are not understood by all of them.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                ),
            )

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_once(self, key: str, data: bytes, content_type: str) -> None:
        k = self.key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=k)
            return  # content-addressed: the same key holds the same bytes
        except ClientError as e:
            if _status(e) != 404:
                raise unavailable(_why(e)) from None
        except BotoCoreError as e:
            raise unavailable(_why(e)) from None
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=k, Body=data, ContentType=content_type, ContentMD5=md5
            )
        except (ClientError, BotoCoreError) as e:
            raise unavailable(_why(e)) from None

    def response(self, key: str, media_type: str, headers: dict[str, str]) -> Response | None:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "NoSuchKey":
                return None
            raise unavailable(_why(e)) from None
        except BotoCoreError as e:
            raise unavailable(_why(e)) from None
        body = obj["Body"]
        return StreamingResponse(
            _chunks(body),
            media_type=media_type,
            headers={**headers, "Content-Length": str(obj["ContentLength"])},
        )


def _chunks(body: Any) -> Iterator[bytes]:
    """Starlette runs a plain iterator in its thread pool; the body goes back to the pool."""
    try:
        yield from body.iter_chunks(CHUNK)
    finally:
        body.close()


def _status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _why(e: Exception) -> str:
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        return f"{err.get('Code')} ({_status(e)}) on {e.operation_name}"
    return f"{type(e).__name__}: {e}"


@lru_cache(maxsize=8)
def _s3(*config: Any) -> S3Store:
    return S3Store(*config)


def media_store() -> MediaStore:
    """The store the settings name (one S3 client per process and configuration)."""
    s = get_settings()
    if s.media_backend == "dir":
        return DirStore(s.media_dir)
    return _s3(
        s.s3_bucket,
        s.s3_prefix,
        s.s3_endpoint_url,
        s.s3_region,
        s.s3_addressing_style,
        s.s3_connect_timeout_seconds,
        s.s3_read_timeout_seconds,
        s.s3_max_attempts,
    )
