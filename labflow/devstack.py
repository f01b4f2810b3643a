"""`make run` and `make stop`: every process LabFlow needs, in one terminal (docs/architecture.md §5 Runtime).

`make run` (`python -m labflow.devstack run`): as the owner (DATABASE_URL, or the embedded PostgreSQL's
superuser) it migrates and sets up the runtime role (`manage.py db_roles`); then the demo data and every process
of the Procfile (web, worker, beat, MLLP listener) run as the runtime role. Once the web answers, a banner repeats
the URL and the logins. Ctrl-C stops the processes and then the embedded PostgreSQL and Redis this run used.
Run as root, worker and beat run as the system user `labflow`, never as root.

`make stop` (`python -m labflow.devstack stop`): stops a `make run` started in another terminal, and the embedded
servers.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from labflow import embedded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CELERY_USER = "labflow"  # the user the Docker image runs as, too
PID_FILE = embedded.VAR_DIR / "make-run.pid"


def _manage(*args: str, env: dict[str, str], capture: bool = False) -> str:
    result = subprocess.run(  # noqa: S603  # this interpreter and our own arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, check=True, text=True, stdout=subprocess.PIPE if capture else None,
    )  # fmt: skip
    return result.stdout or ""


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise SystemExit(f"make run as root needs {name} to run Celery as a non-root user")
    return path


def _celery_as_non_root(*, embedded_db: bool, embedded_redis: bool) -> dict[str, str]:
    """As root: the system user `labflow` (made here if missing) for worker and beat, and access for it to the
    embedded servers' sockets. The Procfile passes LABFLOW_CELERY_USER to Celery's --uid/--gid."""
    try:
        pwd.getpwnam(CELERY_USER)
    except KeyError:
        useradd = [_tool("useradd"), "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        subprocess.run([*useradd, CELERY_USER], check=True)  # noqa: S603  # fixed arguments
    user = pwd.getpwnam(CELERY_USER)
    # The user must reach the interpreter and its standard library (a Python installed under /root, say): give
    # "others" traverse (x, not read) on the directories above them that lack it, as pgserver does for its own.
    for target in {Path(sys.base_prefix), Path(sys.prefix), ROOT}:
        for directory in reversed(target.resolve().parents):
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                directory.chmod(mode | stat.S_IXOTH)
                print(f"make run: others may now traverse {directory} (o+x) to reach Python", flush=True)
    if embedded_db:
        # The socket lives in the data directory: its group (pgserver's) may enter it while PostgreSQL runs
        # (0750, which PostgreSQL accepts); the files stay 0600 (labflow/embedded.py starts it from 0700).
        pgdata = embedded.VAR_DIR / "pg"
        group = grp.getgrgid(pgdata.stat().st_gid)
        if CELERY_USER not in group.gr_mem and group.gr_gid != user.pw_gid:
            usermod = [_tool("usermod"), "--append", "--groups", group.gr_name, CELERY_USER]
            subprocess.run(usermod, check=True)  # noqa: S603  # a group name from the system's own database
        pgdata.chmod(0o750)
    if embedded_redis:
        redis_socket = embedded.VAR_DIR / "redis" / "redis.sock"
        os.chown(redis_socket, -1, user.pw_gid)
        redis_socket.chmod(0o770)
    celery_dir = embedded.VAR_DIR / "celery"  # beat's schedule file: written by the celery user
    celery_dir.mkdir(exist_ok=True)
    os.chown(celery_dir, user.pw_uid, user.pw_gid)
    celery_dir.chmod(0o700)
    return {
        "LABFLOW_CELERY_USER": CELERY_USER,
        "CELERY_BEAT_SCHEDULE_FILENAME": str(celery_dir / "celerybeat-schedule"),
    }


def _wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.5)
    return False


def _banner(*, url: str, web_port: int, mllp_port: int, logins: list[str], stops: str) -> None:
    if not (_wait_for_port(web_port, 120) and _wait_for_port(mllp_port, 60)):
        return  # honcho shows why a process did not start
    rule = "=" * 78
    lines = [
        "",
        rule,
        f"LabFlow is up: {url}",
        f"HL7 v2 results over MLLP: 127.0.0.1:{mllp_port}",
        *logins,
        f"Ctrl-C (or `make stop` in another terminal) stops {stops}.",
        rule,
        "",
    ]
    print("\n".join(lines), flush=True)


def run() -> int:
    base = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    embedded_db, embedded_redis = not base.get("DATABASE_URL"), not base.get("REDIS_URL")
    web_port, mllp_port = int(base.get("WEB_PORT") or 8000), int(base.get("MLLP_PORT") or 2575)
    url = f"http://127.0.0.1:{web_port}/"
    embedded.VAR_DIR.mkdir(exist_ok=True)
    try:
        # As the owner: the schema, then the runtime role's grants (docs/architecture.md §5).
        _manage("migrate", "--noinput", "-v0", env=base)
        runtime_url = _manage("db_roles", "--print-url", env=base, capture=True).strip()
        _manage("collectstatic", "--noinput", "-v0", env=base)
        env = {
            **base,
            "DATABASE_URL": runtime_url,
            "REDIS_URL": base.get("REDIS_URL") or embedded.redis_url(),
            "WEB_PORT": str(web_port),
            "MLLP_PORT": str(mllp_port),
        }
        demo = _manage("seed_demo", "--print-logins", "--url", url, env=env, capture=True)
        print(demo, end="", flush=True)
        lines = demo.splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("Logins")), len(lines))
        logins = [line for line in lines[start:] if line.strip()]
        if os.geteuid() == 0:
            env.update(_celery_as_non_root(embedded_db=embedded_db, embedded_redis=embedded_redis))
        engines = [name for name, used in (("PostgreSQL", embedded_db), ("Redis", embedded_redis)) if used]
        stops = "web, worker, beat and the MLLP listener" + (
            f", then the embedded {' and '.join(engines)}" if engines else ""
        )
        honcho = subprocess.Popen([str(BIN / "honcho"), "-f", "Procfile", "start"], cwd=ROOT, env=env)  # noqa: S603
        PID_FILE.write_text(str(os.getpid()))

        def forward(signum: int, _frame: FrameType | None) -> None:
            honcho.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)  # `make stop`
        threading.Thread(
            target=_banner,
            kwargs={"url": url, "web_port": web_port, "mllp_port": mllp_port, "logins": logins, "stops": stops},
            daemon=True,
        ).start()
        while True:
            try:
                return honcho.wait()
            except KeyboardInterrupt:
                continue  # the terminal sent Ctrl-C to honcho too: it is stopping its processes
    finally:
        PID_FILE.unlink(missing_ok=True)
        stopped = [
            name
            for name, used, stop in (
                ("PostgreSQL", embedded_db, embedded.stop_postgres),
                ("Redis", embedded_redis, embedded.stop_redis),
            )
            if used and stop()
        ]
        if stopped:
            print(f"Stopped the embedded {' and '.join(stopped)}.", flush=True)


def stop() -> int:
    """Stop a running `make run` (it stops its processes), then the embedded servers."""
    import psutil  # type: ignore[import-untyped]  # pgserver's dependency

    running = False
    try:
        pid = int(PID_FILE.read_text())
        if "labflow.devstack" not in psutil.Process(pid).cmdline():
            raise ValueError("a stale pid file")
        os.kill(pid, signal.SIGTERM)
        running = True
        print(f"Stopping make run (pid {pid}) ...", flush=True)
        deadline = time.monotonic() + 60
        while PID_FILE.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    except (OSError, ValueError, psutil.Error):
        pass  # none runs
    stopped = embedded.stop()  # make run stops those it used; these are any others under ./var/
    if stopped:
        print(f"Stopped the embedded {' and '.join(stopped)}.", flush=True)
    elif not running:
        print("Nothing to stop.", flush=True)
    return 0


if __name__ == "__main__":
    commands = {"run": run, "stop": stop}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit("usage: python -m labflow.devstack run|stop")
    sys.exit(commands[sys.argv[1]]())
