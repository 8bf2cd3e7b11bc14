"""Demo departments, demo accounts (listed in the README) and a grid staff roster.

Idempotent. Demo accounts are not created when ENV=production (and could not log in there).
Roster staff other than the demo accounts have no usable password: they exist for the service
cards and rosters, not to log in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.passwords import hash_password
from app.config import get_settings

DISTRICT = "360602000000"
STREET = "360602001000"  # 江边街道
COMMUNITY = "360602001001"  # 立新社区 (江边街道)
OTHER_COMMUNITY = "360602004001"  # 东湖家园社区 (梅园街道)

# code, name, English name, parent organisation: the lead departments a district really has.
DEPARTMENTS: tuple[tuple[str, str, str, str], ...] = (
    ("CGJ", "区城市管理局", "Urban Management Bureau", "区人民政府"),
    ("ZJJ", "区住房和城乡建设局", "Housing and Urban-Rural Development Bureau", "区人民政府"),
    ("MZJ", "区民政局", "Civil Affairs Bureau", "区人民政府"),
    ("ZFW", "区委政法委员会", "Political and Legal Affairs Commission", "区委"),
    ("GAJ", "市公安局月湖分局", "Public Security Sub-bureau", "市公安局"),
    ("SCJ", "区市场监督管理局", "Market Supervision Bureau", "区人民政府"),
    ("STJ", "市生态环境局月湖分局", "Ecology and Environment Sub-bureau", "市生态环境局"),
    ("YJJ", "区应急管理局", "Emergency Management Bureau", "区人民政府"),
    ("SLJ", "区水利局", "Water Resources Bureau", "区人民政府"),
    ("JYJ", "区教育体育局", "Education and Sports Bureau", "区人民政府"),
    ("WJW", "区卫生健康委员会", "Health Commission", "区人民政府"),
    ("RSJ", "区人力资源和社会保障局", "Human Resources and Social Security Bureau", "区人民政府"),
    ("JTJ", "区交通运输局", "Transport Bureau", "区人民政府"),
    ("ZRJ", "市自然资源局月湖分局", "Natural Resources Sub-bureau", "市自然资源局"),
    ("XFJ", "区消防救援大队", "Fire and Rescue Brigade", "市消防救援支队"),
    (
        "GDJ",
        "国网鹰潭供电公司月湖供电中心",
        "State Grid Yuehu Power Supply Centre",
        "国网鹰潭供电公司",
    ),
)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: str
    scope: str
    """area code, department code, or 'grids:<community code>:<how many>' for grid posts."""
    title: str


ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("admin", "系统管理员", "admin", "", "系统管理员"),
    DemoAccount("centre", "区综治中心值班员", "centre", DISTRICT, "指挥调度员"),
    DemoAccount("street", "江边街道网格办", "street", STREET, "网格办主任"),
    DemoAccount("community", "立新社区书记", "community", COMMUNITY, "社区党委书记"),
    DemoAccount("governance", "立新社区综治专干", "governance", COMMUNITY, "综治专干"),
    DemoAccount("leader", "立新社区网格长", "grid_leader", f"grids:{COMMUNITY}:0", "网格长"),
    DemoAccount("worker", "立新社区网格员", "grid_worker", f"grids:{COMMUNITY}:2", "专职网格员"),
    DemoAccount(
        "worker2", "东湖家园网格员", "grid_worker", f"grids:{OTHER_COMMUNITY}:2", "专职网格员"
    ),
    DemoAccount("dept", "城管局派单员", "department", "CGJ", "派单员"),
    DemoAccount("dept2", "住建局派单员", "department", "ZJJ", "派单员"),
)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余于杜叶程"
)
GIVEN = (
    "建国",
    "秀英",
    "志强",
    "丽华",
    "海燕",
    "国平",
    "春梅",
    "小军",
    "红霞",
    "文斌",
    "桂兰",
    "晓东",
    "玉珍",
    "明亮",
    "淑芬",
    "伟",
    "静",
    "敏",
    "磊",
    "洋",
    "艳",
    "勇",
    "娟",
    "涛",
)


def _name(key: str) -> str:
    h = int(hashlib.sha256(key.encode()).hexdigest(), 16)
    return SURNAMES[h % len(SURNAMES)] + GIVEN[(h // 97) % len(GIVEN)]


def _mobile(key: str) -> str:
    h = int(hashlib.sha256(("m" + key).encode()).hexdigest(), 16)
    return f"1{[35, 36, 37, 38, 39, 58, 59, 87, 88, 99][h % 10]}{h % 100_000_000:08d}"


_USER = text(
    """
    INSERT INTO users (username, display_name, password_hash, mobile, is_demo)
    VALUES (:username, :display_name, :password_hash, :mobile, :is_demo)
    ON CONFLICT ((lower(username))) DO NOTHING
    RETURNING id
    """
)
_POST = text(
    """
    INSERT INTO posts (user_id, role, worker_type, area_id, department_id, title, work_phone,
                       starts_on)
    SELECT :user_id, :role, :worker_type, a.id, d.id, :title, :work_phone, DATE '2024-01-01'
    FROM (SELECT 1) one
    LEFT JOIN areas a ON a.code = :area_code
    LEFT JOIN departments d ON d.code = :dept_code
    RETURNING id
    """
)
_POST_GRIDS = text(
    """
    INSERT INTO post_grids (post_id, grid_id)
    SELECT :post_id, g.id FROM grids g
    JOIN areas c ON c.id = g.community_id AND c.code = :community
    WHERE g.kind <> 'special' AND g.deleted_at IS NULL
    ORDER BY g.code
    LIMIT CASE WHEN :n = 0 THEN NULL ELSE :n END
    """
)
_ONE_GRID = text(
    "INSERT INTO post_grids (post_id, grid_id) SELECT :post_id, id FROM grids WHERE code = :code"
)


async def _user(conn: AsyncConnection, **values: Any) -> int | None:
    return (await conn.execute(_USER, values)).scalar()


async def _post(conn: AsyncConnection, **values: Any) -> int:
    values = {
        "worker_type": None,
        "area_code": None,
        "dept_code": None,
        "title": None,
        "work_phone": None,
        **values,
    }
    return int((await conn.execute(_POST, values)).scalar_one())


async def load_departments(conn: AsyncConnection) -> int:
    count = text("SELECT count(*) FROM departments")
    before = (await conn.execute(count)).scalar_one()
    await conn.execute(
        text(
            """
            INSERT INTO departments (code, name, name_en, parent_org, district_id, contact, phone)
            SELECT :code, :name, :name_en, :parent_org, a.id, :contact, :phone
            FROM (SELECT 1) one LEFT JOIN areas a ON a.code = :district
            ON CONFLICT (code) DO NOTHING
            """
        ),
        [
            {
                "code": c,
                "name": n,
                "name_en": en,
                "parent_org": parent,
                "district": DISTRICT,
                "contact": "值班室",
                "phone": f"0701-62{i:05d}",
            }
            for i, (c, n, en, parent) in enumerate(DEPARTMENTS, start=1)
        ],
    )
    return int((await conn.execute(count)).scalar_one() - before)


async def load_accounts(conn: AsyncConnection) -> int:
    """The demo accounts of the README, all with WANGGE_DEMO_PASSWORD."""
    s = get_settings()
    if s.env == "production":
        return 0
    pw = hash_password(s.demo_password)
    created = 0
    for a in ACCOUNTS:
        uid = await _user(
            conn,
            username=a.username,
            display_name=a.display_name,
            password_hash=pw,
            mobile=_mobile(a.username),
            is_demo=True,
        )
        if uid is None:
            continue
        created += 1
        phone = _mobile("work" + a.username)
        if a.role in ("grid_worker", "grid_leader"):
            _, community, n = a.scope.split(":")
            pid = await _post(
                conn,
                user_id=uid,
                role=a.role,
                title=a.title,
                work_phone=phone,
                worker_type="full_time" if a.role == "grid_worker" else None,
            )
            await conn.execute(_POST_GRIDS, {"post_id": pid, "community": community, "n": int(n)})
        elif a.role == "department":
            await _post(
                conn, user_id=uid, role=a.role, dept_code=a.scope, title=a.title, work_phone=phone
            )
        elif a.role == "admin":
            await _post(conn, user_id=uid, role=a.role, title=a.title)
        else:
            await _post(
                conn, user_id=uid, role=a.role, area_code=a.scope, title=a.title, work_phone=phone
            )
    return created


async def load_roster(conn: AsyncConnection, grid_codes: list[str]) -> int:
    """A full-time worker for every grid and a part-time party member for every tenth one.

    They cannot log in (no usable password); they make the service cards real.
    """
    created = 0
    for i, code in enumerate(grid_codes):
        staff = [("full_time", f"roster-{code}")]
        if i % 10 == 0:
            staff.append(("party_member", f"roster-{code}-p"))
        for worker_type, key in staff:
            uid = await _user(
                conn,
                username=key,
                display_name=_name(key),
                password_hash="!no-login",
                mobile=_mobile(key),
                is_demo=True,
            )
            if uid is None:
                continue
            created += 1
            title = "专职网格员" if worker_type == "full_time" else "兼职网格员（在职党员）"
            pid = await _post(
                conn,
                user_id=uid,
                role="grid_worker",
                worker_type=worker_type,
                title=title,
                work_phone=_mobile("work" + key),
            )
            await conn.execute(_ONE_GRID, {"post_id": pid, "code": code})
    return created


async def load_categories(conn: AsyncConnection) -> int:
    """The default category catalogue (app/cases/catalogue.py). Admins edit it afterwards."""
    import orjson

    from app.cases.catalogue import CATEGORIES, CLASSES

    count = text("SELECT count(*) FROM categories")
    before = (await conn.execute(count)).scalar_one()
    await conn.execute(
        text(
            "INSERT INTO category_classes (code, name, name_en, kind) "
            "VALUES (:code, :name, :name_en, :kind) ON CONFLICT (code) DO NOTHING"
        ),
        [{"code": c.code, "name": c.name, "name_en": c.name_en, "kind": c.kind} for c in CLASSES],
    )
    await conn.execute(
        text(
            """
            INSERT INTO categories (code, class_code, name, name_en, description, lead_department,
                                    co_departments, limits, duplicate_radius_m, keywords)
            VALUES (:code, :class_code, :name, :name_en, :description, :lead, :co,
                    CAST(:limits AS jsonb), :radius, :keywords)
            ON CONFLICT (code) DO NOTHING
            """
        ),
        [
            {
                "code": c.code,
                "class_code": c.class_code,
                "name": c.name,
                "name_en": c.name_en,
                "description": c.description,
                "lead": c.lead_department,
                "co": list(c.co_departments),
                "limits": orjson.dumps({k: vars(v) for k, v in c.limits.items()}).decode(),
                "radius": c.duplicate_radius_m,
                "keywords": list(c.keywords),
            }
            for c in CATEGORIES
        ],
    )
    return int((await conn.execute(count)).scalar_one() - before)
