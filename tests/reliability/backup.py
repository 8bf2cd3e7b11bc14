"""pgBackRest around a cluster of our own (scripts/backup.sh): the restore drill
(tests/ops/test_restore_drill.py) and the backup benchmark (bench/bench_backup.py)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass

from tests.reliability.cluster import Cluster
from tests.reliability.live import ROOT

BACKUP = str(ROOT / "scripts" / "backup.sh")


class ArchivingCluster(Cluster):
    """The fault tests' cluster, archiving its WAL with pgBackRest."""

    def __init__(self, archive_command: str | None = None) -> None:
        super().__init__()
        self.archive_command = archive_command

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=50 -c shared_buffers=64MB -c wal_level=replica "
        )
        if self.archive_command:
            opts += f'-c archive_mode=on -c "archive_command={self.archive_command}" '
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-w", "-t", "120", "-o", opts, "start",
        )  # fmt: skip


@dataclass
class Drill:
    env: dict[str, str]
    timeout: float = 300

    def run(self, *args: str) -> float:
        t0 = time.monotonic()
        p = subprocess.run(
            [BACKUP, *args], env={**os.environ, **self.env}, timeout=self.timeout, capture_output=True,
            text=True,
        )  # fmt: skip
        assert p.returncode == 0, f"backup.sh {' '.join(args)}: {p.returncode} {p.stderr[-2000:]}"
        return time.monotonic() - t0

    def out(self, *args: str) -> str:
        return subprocess.run(
            [BACKUP, *args], check=True, env={**os.environ, **self.env}, timeout=60,
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip


def drill_env(cluster: Cluster, media: str) -> dict[str, str]:
    """scripts/backup.sh's settings for `cluster`: its repository beside it, photos in `media`."""
    return {
        "WANGGE_BACKUP_REPO": str(cluster.root / "backup"),
        "WANGGE_BACKUP_PGDATA": str(cluster.data),
        "WANGGE_BACKUP_PGPORT": str(cluster.port),
        "WANGGE_BACKUP_PGSOCKET": str(cluster.sock),
        "WANGGE_MEDIA_DIR": media,
    }
