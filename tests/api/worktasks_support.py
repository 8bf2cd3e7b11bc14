"""Helpers of the duty, worker-task, admission and push tests: a second worker of the demo grid
(with a token), roster slots."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import jwt
from sqlalchemy import text

from app.auth.tokens import ALGORITHM
from app.config import get_settings

COMMUNITY = "360602001001"  # 立新社区
GRID = "360602001001001"


async def make_worker(
    conn: Any, grid_id: int, username: str, worker_type: str = "part_time"
) -> tuple[int, dict[str, str]]:
    """A grid worker of `grid_id` (in the test's transaction) and headers that authenticate them."""
    uid = (
        await conn.execute(
            text(
                "INSERT INTO users (username, display_name, password_hash) "
                "VALUES (:u, :u, 'x') RETURNING id"
            ),
            {"u": username},
        )
    ).scalar_one()
    post = (
        await conn.execute(
            text(
                "INSERT INTO posts (user_id, role, worker_type, starts_on) "
                "VALUES (:u, 'grid_worker', :t, DATE '2024-01-01') RETURNING id"
            ),
            {"u": uid, "t": worker_type},
        )
    ).scalar_one()
    await conn.execute(
        text("INSERT INTO post_grids (post_id, grid_id) VALUES (:p, :g)"), {"p": post, "g": grid_id}
    )
    sid = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO auth_sessions (id, user_id, expires_at) "
            "VALUES (:sid, :uid, now() + interval '1 day')"
        ),
        {"sid": sid, "uid": uid},
    )
    now = int(time.time())
    token = jwt.encode(
        {"sub": str(uid), "sid": str(sid), "iat": now, "exp": now + 3600, "typ": "access"},
        get_settings().signing_key,
        algorithm=ALGORITHM,
    )
    return int(uid), {"Authorization": f"Bearer {token}"}


async def user_id(conn: Any, username: str) -> int:
    return int(
        (
            await conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username})
        ).scalar_one()
    )


def slot(
    user: int, start: datetime, end: datetime, grid: int | None = None, **kw: Any
) -> dict[str, Any]:
    return {
        "user_id": user,
        "grid_id": grid,
        "starts_at": start.isoformat(),
        "ends_at": end.isoformat(),
        **kw,
    }
