"""The database's CPU, all of it, on this machine: for bench_intake on one PostgreSQL or on a Citus
cluster whose nodes run here (scripts/citus.sh).

On Citus the app's statements run in the coordinator's backends and, for their shards, in the
workers' backends, which the coordinator opens and closes as it needs them; counting only the
app's own backends misses most of it. So a node's CPU is its postmaster's and every live child's
(utime + stime), plus what the postmaster's reaped children used (cutime + cstime: a backend that
exited during the run is counted too). That includes the node's background processes
(checkpointer, WAL writer, autovacuum, Citus's maintenance daemon) and any other database's work
on it: run the bench on a cluster nothing else uses.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg

_NODES = """
SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' AND isactive
ORDER BY groupid
"""


def _fields(pid: int) -> list[str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; [1] is the ppid


def tree_cpu_s(postmaster: int) -> float:
    """CPU seconds of a postmaster, its live children and its reaped children."""
    tick = os.sysconf("SC_CLK_TCK")
    f = _fields(postmaster)
    total = sum(int(x) for x in f[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            c = _fields(int(entry.name))
        except (OSError, ValueError):
            continue  # exited meanwhile
        if int(c[1]) == postmaster:
            total += int(c[11]) + int(c[12])
    return total / tick


async def postmasters(conn: asyncpg.Connection, user: str) -> list[int] | None:
    """The postmaster PID of every node of a Citus cluster (the coordinator included), read from
    each node's postmaster.pid; None when `conn`'s database has no Citus or its nodes' files are
    not on this machine."""
    if not await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'citus'"):
        return None
    db = await conn.fetchval("SELECT current_database()")
    pids = []
    for r in await conn.fetch(_NODES):
        node = await asyncpg.connect(host=r["nodename"], port=r["nodeport"], user=user, database=db)
        try:
            data = await node.fetchval("SELECT current_setting('data_directory')")
        finally:
            await node.close()
        try:
            pids.append(int((Path(data) / "postmaster.pid").read_text().split()[0]))
        except OSError:
            return None
    return pids


def cluster_cpu_s(pids: list[int]) -> float:
    return sum(tree_cpu_s(p) for p in pids)
