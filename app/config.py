"""Settings from the environment (pydantic-settings). Every knob has a hard limit."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def async_url(url: str) -> str:
    """Accept libpq-style URLs and make them the asyncpg dialect SQLAlchemy needs. A libpq
    multi-host URL (`postgresql://u@h1:p1,h2:p2/db?target_session_attrs=read-write`, a Patroni
    cluster) becomes SQLAlchemy's form (`postgresql+asyncpg://u@/db?host=h1:p1&host=h2:p2&...`):
    asyncpg tries the hosts in order and keeps the one that accepts writes."""
    for prefix in (
        "postgresql+asyncpg://",
        "postgresql+psycopg://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + _multi_host(url[len(prefix) :])
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def libpq_url(url: str) -> str:
    """The URL for the raw driver (asyncpg.connect): libpq's form, multi-host kept as commas."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _multi_host(rest: str) -> str:
    netloc, _, path = rest.partition("/")
    user, at, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return rest
    db, _, query = path.partition("?")
    params = "&".join(f"host={h}" for h in hosts.split(","))
    return f"{user}{at}/{db}?{params}" + (f"&{query}" if query else "")


DEVELOPMENT_KEY = "wangge-development-key-not-for-production-use-0000"
"""Signs tokens outside production when no key is set; ENV=production refuses it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WANGGE_", extra="ignore")

    env: Literal["development", "test", "production"] = Field(
        "development", validation_alias=AliasChoices("ENV", "WANGGE_ENV")
    )
    """`production` refuses the demo accounts and requires `WANGGE_SECRET_KEY`."""
    database_url: str = Field(
        "postgresql://wangge@127.0.0.1:54329/wangge",
        validation_alias=AliasChoices("DATABASE_URL", "WANGGE_DATABASE_URL"),
    )
    """`postgresql://user:pass@host:port/db`; default: the project-local cluster of `make run`."""
    db_pool_size: int = Field(20, ge=1, le=100)
    """Pooled connections per worker process. Size it to the requests a worker serves at once: a
    connection beyond the pool (overflow) is opened for one request and closed after it, and that
    connect (TLS probe, start-up, the driver's type set-up, statements prepared anew) cost the
    lookup 4x its own work at 16 clients on a pool of 10 (docs/benchmarks.md)."""
    db_max_overflow: int = Field(10, ge=0, le=100)
    """Connections beyond the pool a worker may open under load."""
    db_hot_pool_size: int = Field(16, ge=1, le=100)
    """Pooled connections per worker for the hot paths' statements (the case intake, the point
    lookup), beside the main pool: their connections keep one generic plan per statement
    (`plan_cache_mode = force_generic_plan`, `app.db.Database.hot`)."""
    db_hot_max_overflow: int = Field(16, ge=0, le=100)
    """Connections beyond the hot pool a worker may open under load."""
    db_hot_generic_plans: bool = True
    """The hot pool's connections plan each prepared statement once and keep that generic plan
    (`plan_cache_mode = force_generic_plan`). Off: PostgreSQL's own choice between custom and
    generic plans (`auto`), e.g. on a Citus coordinator where a generic plan of a statement whose
    district is a parameter is pruned to its shard at each execution anyway, or to compare."""
    database_replica_url: str | None = Field(None, max_length=2000)
    """A streaming standby (or a multi-host URL with `target_session_attrs=prefer-standby`) for
    the reads that may trail the primary by a moment: vector tiles, the OGC API, figures and
    their exports (`app.db.ReplicaReader`). Unset: everything reads the primary. The case API,
    sync and everything after a write read the primary (read-your-writes)."""
    replica_max_lag_seconds: float = Field(30, ge=0, le=3600)
    """A replica further behind than this (or unreachable) is not read: the primary is, until
    the next check."""
    replica_check_seconds: float = Field(5, ge=0.5, le=300)
    """How often each process measures its replica's lag."""
    replica_wait_ms: int = Field(500, ge=0, le=10_000)
    """How long a figure waits for the replica to replay the primary's catch-up of the facts
    before it reads the primary instead (figures are exact either way)."""
    lookup_index: bool = True
    """Answer the point lookup (`GET /api/v1/grids/lookup` without `at=`) from an in-process
    index of the live boundaries (`app.grids.lookup_index`), without a database round trip: the
    grid, or for a point in no grid the nearest one and its distance; a past time, a point more
    than about 50 km from every grid, or no index yet: the SQL answers."""
    lookup_index_refresh_seconds: float = Field(2, ge=0.1, le=300)
    """How often each process checks whether the registry changed (one cheap statement) and
    rebuilds the index: a changed boundary, community or post is answered within this plus a
    rebuild."""
    lookup_index_max_grids: int = Field(200_000, ge=0, le=2_000_000)
    """Above this many live grids a process keeps no index (its memory) and the SQL answers."""
    db_pre_ping: bool = False
    """Ping each pooled connection before use (a round trip per request). Off: a connection the
    database dropped fails one request with 503, and a disconnect invalidates the whole pool, so
    the next requests reconnect by themselves (no restart)."""
    statement_timeout_ms: int = Field(15_000, ge=100, le=600_000)
    """Per statement; a timeout answers 503 `query_timeout`."""
    db_connect_timeout_seconds: float = Field(5, ge=0.5, le=60)
    """A request waiting for a new connection to a database that is down answers 503 after this."""
    db_pool_timeout_seconds: float = Field(10, ge=0.5, le=120)
    """A request waiting this long for a free pooled connection answers 503 (never hangs)."""

    max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1_048_576)
    """Request body limit (413 before the body is read)."""
    max_import_bytes: int = Field(8 * 1_048_576, ge=1024, le=256 * 1_048_576)
    """Body limit of `POST /api/v1/grids/import`."""
    max_ledger_bytes: int = Field(32 * 1_048_576, ge=1024, le=256 * 1_048_576)
    """Body limit of `POST /api/v1/grids/{grid_id}/basedata/import` (a ledger of 50,000 rows)."""
    compress_min_bytes: int = Field(1024, ge=0, le=1_048_576)
    """Answers of a compressible type (JSON, GeoJSON, vector tiles, HTML, CSV) at least this big go
    zstd-, brotli- or gzip-compressed to clients that accept it (`Accept-Encoding`)."""
    compress_level: int = Field(4, ge=1, le=9)
    """The compression level (zstd, brotli and gzip alike): 4 is where the bytes stop paying for
    the CPU (docs/benchmarks.md, bench/bench_compress.py)."""
    page_max: int = Field(500, ge=10, le=10_000)
    """Largest page a list may ask for."""
    page_default: int = Field(50, ge=1, le=1_000)
    """Page size of a list that names none."""
    max_vertices: int = Field(20_000, ge=4, le=1_000_000)
    """Vertices per geometry (422 `too_many_vertices`)."""
    max_bbox_km2: float = Field(20_000, ge=1, le=1_000_000)
    """A bbox filter (lists, tiles) may cover at most this area: a city, not a continent."""
    max_import_features: int = Field(20_000, ge=1, le=1_000_000)
    """Features per grid import."""
    sliver_m2: float = Field(1.0, ge=0, le=10_000)
    """Overlaps, gaps and parts outside a parent smaller than this (m²) are ignored."""
    parent_tolerance_m2: float = Field(1.0, ge=0, le=10_000)
    """A grid may stick out of its community by at most this area (m²) on import."""

    city_households_min: int = Field(250, ge=1)
    """Sizing band of city grids (about 300 households): lower end."""
    city_households_max: int = Field(350, ge=1)
    """Sizing band of city grids: upper end."""
    rural_households_min: int = Field(30, ge=1)
    """Sizing band of rural grids: lower end."""
    rural_households_max: int = Field(300, ge=1)
    """Sizing band of rural grids: upper end."""

    console_dir: str = Field("", max_length=4096)
    """The built console (`make console`); empty = console/dist beside the app package."""
    console_base_map_url: str | None = Field(
        None, pattern=r"^https://[^\s]*\{z\}[^\s]*$", max_length=1000
    )
    """The console's base map: a raster tile URL template with `{z}`, `{x}`, `{y}` (XYZ, Web
    Mercator), e.g. 天地图's WMTS with a browser key: `https://t0.tianditu.gov.cn/vec_w/wmts?
    SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec&STYLE=default&TILEMATRIXSET=w&
    FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=KEY`. Its origin is added to the
    console's Content-Security-Policy. Unset (and no file): no base map."""
    console_base_map_file: str | None = Field(None, max_length=4096)
    """An offline base map served by the app: an MBTiles file of raster tiles (PNG, JPEG or
    WebP), at `/console/basemap/{z}/{x}/{y}`; used when `console_base_map_url` is unset."""
    console_base_map_attribution: str = Field("", max_length=300)
    """Shown on the map (e.g. "天地图 审图号：GS(2024)0650号")."""
    field_dir: str = Field("", max_length=4096)
    """The built field app 网格通 (`make field`); empty = field/dist beside the app package."""
    media_backend: Literal["dir", "s3"] = "dir"
    """Where photos are stored (by content hash; `app/cases/storage.py`): `dir` = `media_dir`
    (shared by the replicas: NFS, CephFS...), `s3` = an S3-compatible bucket."""
    media_dir: str = Field(".data/media", min_length=1)
    """Where photos are stored (by content hash); never a client-chosen path."""
    s3_endpoint_url: str | None = Field(
        None, max_length=200, pattern=r"^(https?://[^\s/?#]+(/[^\s?#]*)?)?$"
    )
    """The S3-compatible endpoint (MinIO, Ceph RGW, OSS, COS); empty = AWS S3 of `s3_region`.
    Credentials: the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared files,
    instance roles), never these settings."""
    s3_bucket: str = Field("", max_length=63, pattern=r"^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$")
    """The bucket (required with `media_backend=s3`)."""
    s3_prefix: str = Field(
        "",
        max_length=200,
        pattern=r"^([A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*)?$",
    )
    """Keys are `<prefix>/<sha[:2]>/<sha>.img` and `.thumb.jpg` (no prefix: from the bucket root)."""
    s3_region: str | None = Field(None, max_length=40, pattern=r"^[a-z0-9-]*$")
    """The bucket's region."""
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    """`path` for MinIO and most self-hosted stores, `virtual` for OSS."""
    s3_connect_timeout_seconds: float = Field(3, ge=0.2, le=30)
    """Per S3 call: connecting."""
    s3_read_timeout_seconds: float = Field(10, ge=0.5, le=120)
    """Per S3 call: reading the answer."""
    s3_max_attempts: int = Field(3, ge=1, le=5)
    """Tries per call (the first included, backing off); then the request answers 503."""
    max_upload_bytes: int = Field(10 * 1_048_576, ge=1024, le=100 * 1_048_576)
    """Largest photo."""
    max_photos_per_step: int = Field(9, ge=1, le=50)
    """Photos per timeline step."""
    max_image_pixels: int = Field(40_000_000, ge=1_000_000, le=200_000_000)
    """Decoded pixels per photo (40 MP: a 7700×7700 PNG of 57 KB is refused before decoding, 415
    `unsupported_image`, as a decompression bomb)."""
    image_decode_concurrency: int = Field(2, ge=1, le=64)
    """Photos a process decodes at once (the others wait): the memory a burst of uploads costs is
    bounded by this many decoded images (`bench/bench_upload_rss.py`)."""
    image_decode_memory_mb: int = Field(96, ge=16, le=4096)
    """Decoded pixels a process holds at once, estimated before decoding (4 bytes a pixel and
    half again for the re-encoding): decodes wait until they fit. A JPEG larger than this alone
    is decoded at 1/2, 1/4 or 1/8 scale (the served copy of a 40 MP JPEG is 10 MP); a PNG, WebP
    or HEIC larger than this alone (16 MP at the default) is refused as too many pixels
    (`bench/bench_upload_rss.py`)."""
    evidence_max_m: float = Field(500, ge=10, le=100_000)
    """A photo taken farther than this from its case is flagged (`photo_far_from_case`)."""
    evidence_max_hours: float = Field(24, ge=1, le=24 * 30)
    """A photo taken this long before or after its report is flagged (`photo_time_mismatch`)."""
    duplicate_days: int = Field(7, ge=1, le=90)
    """Duplicate suggestions look this many days back."""
    duplicate_max: int = Field(5, ge=1, le=20)
    """At most this many duplicate suggestions."""
    off_patch_m: float = Field(1000, ge=0, le=100_000)
    """A grid worker reporting farther than this from their own grids is flagged."""
    patrol_batch_max: int = Field(500, ge=1, le=5000)
    """At most this many track points in one batch (`batch_too_large`)."""
    patrol_max_accuracy_m: float = Field(50, ge=1, le=10_000)
    """A track point (or a check-in) reported less accurate than this is flagged: kept, out of
    the line."""
    patrol_max_speed_mps: float = Field(50, ge=1, le=1000)
    """A track point this fast from the last kept one (m/s) is flagged: kept, out of the line."""
    patrol_simplify_m: float = Field(5, ge=0, le=1000)
    """Tolerance of the patrol line simplified for display (m)."""
    patrol_future_seconds: int = Field(120, ge=0, le=3600)
    """Clock skew tolerated on a phone's times; later than now by more is `time_in_future`."""
    patrol_cell_m: int = Field(50, ge=10, le=1000)
    """Side of the coverage lattice's square cells (m)."""
    coverage_radius_m: float = Field(30, ge=1, le=1000)
    """A cell is visited when a kept track passes this close to its centre (m)."""
    coverage_stale_days: int = Field(7, ge=1, le=365)
    """Coverage lists the cells not visited for this many days."""
    patrol_hours_per_workday: float = Field(4, ge=0, le=24)
    """The patrol standard: hours on patrol per working day (official calendar)."""
    patrol_retention_days: int = Field(90, ge=1, le=3650)
    """Track points of patrols ended longer ago are deleted; the line stays (PIPL)."""
    checkin_far_m: float = Field(1000, ge=10, le=100_000)
    """A check-in farther than this from its point is refused (`checkin_too_far`), nearer but
    outside its radius it is kept and flagged."""
    idempotency_hours: int = Field(72, ge=72, le=24 * 30)
    """How long an `Idempotency-Key` replays its first answer."""
    idempotency_lease_seconds: int = Field(30, ge=5, le=600)
    """A key whose first request died is free for a retry after this."""
    catch_all_department: str = Field("ZFW", min_length=1, max_length=32)
    """属地兜底: the department that gets a case no routing rule or catalogue entry routes."""
    office_hours: str = Field(
        "08:30-12:00,14:30-17:30", pattern=r"^\d{2}:\d{2}-\d{2}:\d{2},\d{2}:\d{2}-\d{2}:\d{2}$"
    )
    """Morning and afternoon office periods: working-hour limits count only these."""
    scheduler_seconds: float = Field(30, ge=1, le=3600)
    """How often each process tries to run the loop's clock (one wins each tick)."""
    scheduler_enabled: bool = True
    """Run the loop's clock (reminders, escalation) in this process."""
    events_publish_seconds: float = Field(1, ge=0.05, le=60)
    """How often each process's relay looks for events another process committed and did not
    publish (its own it publishes at once after their commit; see `app.events.outbox`)."""
    derive_seconds: float = Field(2, ge=0.2, le=600)
    """How often each process recomputes the evaluation facts of changed cases (readers of the
    figures catch up first anyway: this bounds the backlog, not the figures' exactness)."""
    escalate_to_centre_hours: float = Field(4, ge=0, le=24 * 30)
    """Still overdue this many hours after the street was told: the centre is told."""
    remind_before_minutes: int = Field(30, ge=1, le=24 * 60)
    """Reminder this long before a deadline (`case.deadline_soon`)."""
    meeting_remind_days: int = Field(15, ge=1, le=92)
    """A big party committee with no joint meeting in the quarter is reminded this many days
    before the quarter ends."""
    webhook_poll_seconds: float = Field(5, ge=0.1, le=600)
    """How often each process looks for due webhook deliveries."""
    webhook_lease_seconds: float = Field(60, ge=2, le=3600)
    webhook_allow_private: bool = False
    """Let webhooks target loopback, private, link-local and other non-public addresses (tests
    and local development only: otherwise a subscription could make the server call into its own
    network)."""
    """A claimed delivery is another process's to retry after this long (its sender died)."""
    stream_max_seconds: float = Field(3600, ge=1, le=24 * 3600)
    """A live stream ends after this long (`end`, max_age); the console reconnects and resumes."""
    reopen_days: int = Field(7, ge=0, le=365)
    """A closed case can be reopened this many days."""
    sync_page_max: int = Field(500, ge=10, le=5000)
    """Largest `limit` of `GET /api/v1/sync`."""

    open311_window_days: int = Field(90, ge=1, le=366)
    """Open311 request lists: the default window and the longest start_date..end_date span."""
    open311_page_max: int = Field(1000, ge=10, le=10_000)
    """Open311 lists answer at most this many requests a page (the spec's 1000)."""
    open311_private_classes: str = Field("MD,ZA", max_length=200, pattern=r"^[A-Z,]*$")
    """Category classes (矛盾纠纷, 社会治安) whose requests show no description, address or place
    in public Open311 answers."""
    open311_public_channels: str = Field("hotline,qr", max_length=200, pattern=r"^[a-z,]*$")
    """Intake channels whose cases the public Open311 feed publishes (residents' reports: the
    hotline 12345 and the QR form). Grid workers' reports (`app`), the console's and the
    departments' stay internal unless their category is in `open311_public_categories`."""
    open311_public_categories: str = Field("", max_length=4000, pattern=r"^[A-Za-z0-9_,-]*$")
    """Category codes (comma-separated) whose cases the public feed publishes whatever their
    channel (e.g. street lamps, potholes)."""
    open311_snap_m: float = Field(50, ge=0, le=5000)
    """Public coordinates are snapped to a grid of this many metres (0: exact)."""
    public_id_key: str | None = Field(None, min_length=32)
    """Derives the public (encrypted) ids of the Open311 door; default: the signing key. Set it
    to keep the public ids when the signing key is rotated."""
    open311_key_per_minute: int = Field(120, ge=1, le=100_000)
    """Open311 POSTs per API key per minute (counted in PostgreSQL; 429 with Retry-After beyond)."""
    open311_ip_per_minute: int = Field(120, ge=1, le=100_000)
    """Open311 POSTs per client address per minute."""
    qr_per_hour: int = Field(10, ge=1, le=10_000)
    """Residents' QR form: reports per client address per hour (bursts of 3)."""
    qr_form_hours: float = Field(2, ge=0.1, le=48)
    """A QR form page can be sent this long after it was opened."""
    public_url: str | None = Field(
        None, max_length=200, pattern=r"^(https?://[^\s/?#]+(/[^\s?#]*)?)?$"
    )
    """The address residents reach the service at (e.g. https://wangge.example.gov.cn), printed
    into the service cards' QR codes; default: the address the request came to."""
    trusted_proxies: str = Field("", max_length=2000, pattern=r"^[0-9A-Fa-f.:/, ]*$")
    """Addresses (or CIDR networks, comma-separated) of the reverse proxies in front of the
    service. Only a request that comes from one of them has its `X-Forwarded-For` (the client's
    address: audit log, per-address limits) and `X-Forwarded-Proto` read; default none, so a
    forged header is ignored, loopback included. Run uvicorn with `--no-proxy-headers` (as
    `make run` and the Dockerfile do): the service reads the headers itself."""
    rate_limits: bool = True
    """Per-account and per-IP limits on login and intake (fixed one-minute windows in PostgreSQL,
    shared by every replica)."""
    rate_local_share: float = Field(0.25, ge=0, le=0.5)
    """Intake and Open311 posts: while every key of a request is below this share of its limit
    (as this process last read the count, plus what it admitted since), the process admits it
    and writes the hit in its next batch (every 0.5 s) instead of a round trip per request; 0:
    every check goes to PostgreSQL. Several processes may pass a limit together by at most
    (processes - 1) × share × limit until their next batch (`app.ratelimit`)."""
    login_per_account_per_minute: int = Field(10, ge=1, le=1_000)
    """Logins per user name (known or not) per minute."""
    login_per_ip_per_minute: int = Field(60, ge=1, le=100_000)
    """Logins per client address per minute."""
    intake_per_account_per_minute: int = Field(120, ge=1, le=100_000)
    """Reports per account per minute."""
    intake_per_ip_per_minute: int = Field(3_000, ge=1, le=1_000_000)
    """High: many phones share one carrier NAT address."""

    metrics_token: str | None = Field(None, min_length=16, max_length=200)
    """GET /metrics answers loopback clients only; with this set, any client that sends
    `Authorization: Bearer <token>` (and no other)."""

    otel_endpoint: str | None = Field(None, pattern=r"^https?://", max_length=500)
    """OpenTelemetry traces (off when unset): the OTLP/HTTP endpoint of a collector, e.g.
    `http://otel-collector:4318`; spans go to `<endpoint>/v1/traces`. A span per request
    (method and route template, status, request id: never the path's values, the query string
    or the body), and one per statement (its text has binds, never values)."""
    otel_service_name: str = Field("wangge", min_length=1, max_length=100)
    """`service.name` of the traces."""
    access_log: bool = False
    """One JSON log line per request (method, route template, status, milliseconds; never the
    query string or the body), with its request id. Off by default, as uvicorn's access log is
    in `make run` and the Dockerfile: every other line carries the request id either way."""

    demo_password: str = Field("Wangge#2026", min_length=8)
    """Password of the demo accounts (never created when ENV=production)."""

    secret_key: str | None = Field(None, min_length=32)
    """Signs access tokens; required when ENV=production (a fixed dev key is used otherwise)."""
    pii_keys: str | None = Field(None, max_length=2000)
    """Keys that encrypt identity numbers and phones of the base data at rest (AES-256-GCM):
    `version:base64-of-32-bytes`, comma-separated; new rows use the highest version and
    `wangge rotate-keys` re-encrypts older rows. Required when ENV=production (the server refuses
    to start without it or with the development key); outside production a key derived from the
    development secret is used (version 1)."""
    pii_hash_key: str | None = Field(None, min_length=32, max_length=200)
    """Keys the HMAC-SHA256 of identity numbers and phones (exact search); required when
    ENV=production (derived from the development secret otherwise)."""
    basedata_retention_days: int = Field(365, ge=1, le=36500)
    """People who moved away (or died) are reduced to figures this many days later (the
    `basedata` job, `wangge basedata-retention`)."""
    vapid_private_key: str | None = Field(None, min_length=40, max_length=400)
    """Web Push (VAPID, RFC 8292): the P-256 private key, base64url of its 32 bytes or PEM;
    required when ENV=production (a key derived from the development secret is used otherwise)."""
    vapid_subject: str = Field(
        "mailto:wangge@localhost", pattern=r"^(mailto:|https://)", max_length=200
    )
    """VAPID `sub`: how a push service reaches the operator."""
    push_poll_seconds: float = Field(5, ge=0.1, le=600)
    """How often each process fans events out to devices and sends what is due."""
    push_ttl_seconds: int = Field(24 * 3600, ge=0, le=28 * 24 * 3600)
    """How long a push service keeps a message for a device that is offline (TTL)."""
    access_token_minutes: int = Field(15, ge=1, le=60)
    """Access token lifetime."""
    session_days: int = Field(7, ge=1, le=90)
    """A login lasts at most this long, however often it is refreshed."""
    idle_minutes: int = Field(30, ge=5, le=24 * 60)
    """A session not refreshed for this long expires (idle timeout)."""
    lockout_threshold: int = Field(5, ge=3, le=20)
    """Failed logins in a row that lock an account."""
    lockout_minutes: int = Field(15, ge=1, le=24 * 60)
    """How long a locked account stays locked."""
    password_min_length: int = Field(10, ge=8, le=128)
    """Shortest password (also: 3 of 4 character classes, not the user name)."""
    auth_cache_seconds: int = Field(30, ge=0, le=60)
    """Tokens of a disabled user or a revoked session stop working within this many seconds."""

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, v: str) -> str:
        for part in v.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)
        return v

    @property
    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(p.strip(), strict=False)
            for p in self.trusted_proxies.split(",")
            if p.strip()
        ]

    @field_validator("database_url", "database_replica_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is not None:
            async_url(v)
        return v

    @model_validator(mode="after")
    def _check_production_key(self) -> Settings:
        if self.env != "production":
            return self
        if not self.secret_key:
            raise ValueError("WANGGE_SECRET_KEY must be set when ENV=production")
        if self.secret_key == DEVELOPMENT_KEY:
            raise ValueError("WANGGE_SECRET_KEY is the development key: never in production")
        if len(self.secret_key.encode()) < 32:
            raise ValueError("WANGGE_SECRET_KEY must be at least 32 bytes when ENV=production")
        return self

    @model_validator(mode="after")
    def _check_media(self) -> Settings:
        if self.media_backend == "s3" and not self.s3_bucket:
            raise ValueError("WANGGE_S3_BUCKET is required when WANGGE_MEDIA_BACKEND=s3")
        return self

    @property
    def signing_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        if self.env == "production":
            raise RuntimeError("WANGGE_SECRET_KEY must be set when ENV=production")
        return DEVELOPMENT_KEY

    @property
    def async_database_url(self) -> str:
        return async_url(self.database_url)


@lru_cache
def get_settings() -> Settings:
    return Settings()
