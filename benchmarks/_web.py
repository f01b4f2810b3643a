"""Helpers shared by the web benchmarks (alert_latency.py, inbox_poll.py): their server options, the environment
of a run, its subprocesses (gunicorn, Celery), readiness checks, a hard time limit, and the machine they ran on.

Like benchmarks._common, importing this module configures nothing; the scripts set up Django via `start_run`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from benchmarks._common import ROOT, cpu_model, migrate, recreate_database
from tests.polling import wait_for

BIN = ROOT / ".venv" / "bin"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/labflow_bench_web"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
SETTINGS_MODULE = "benchmarks.bench_settings"
# Settings these benchmarks must see at their defaults; removed from the inherited environment.
DEFAULTED = ("SWEEP_INTERVAL_SECONDS", "INBOX_POLL_SECONDS", "IDLE_TIMEOUT_MINUTES", "CONN_MAX_AGE")


def bench_env(tmp: Path, *, database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of every process of a run (this one included): own database, Redis db and queue."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": f"labflow-bench-web-{uuid.uuid4().hex[:8]}",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp / "celerybeat-schedule"),
        "SECRET_KEY": "labflow-benchmark-only-secret-key-not-for-production-use-0123456789",
        "DEBUG": "false",
        "SECURE_HTTPS": "false",
        "LOG_LEVEL": "WARNING",
    }
    for name in (*DEFAULTED, "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)
    return env


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """--database-url and --redis-url: BENCH_DATABASE_URL and BENCH_REDIS_URL, else the defaults above."""
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))


def start_run(args: argparse.Namespace, prefix: str) -> tuple[Path, dict[str, str]]:
    """A run's temp dir and environment; the database re-created, this process configured like the servers and
    migrated (quietly)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    env = bench_env(tmp, database_url=args.database_url, redis_url=args.redis_url)
    recreate_database(args.database_url)
    os.environ.update(env)
    import django

    django.setup()
    migrate()
    return tmp, env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URL built here)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Processes:
    """Subprocesses of one run, logged to files; stop() terminates them (then kills their own group)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    def start(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            list(argv), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.running[name] = (process, log)
        return process

    def web(self, workers: int = 2, access_log: Path | None = None, asgi: bool = False) -> str:
        """gunicorn on a free loopback port, once it answers; returns its base URL. `asgi`: the Procfile's
        uvicorn workers (labflow/asgi.py) instead of the WSGI sync workers."""
        port = free_port()
        app = ["labflow.asgi:application", "-k", "uvicorn_worker.UvicornWorker"] if asgi else ["labflow.wsgi"]
        # --no-control-socket: gunicorn 27's control socket is one fixed path per user; don't clash with others.
        argv = [str(BIN / "gunicorn"), *app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                "--no-control-socket"]  # fmt: skip
        if access_log is not None:
            argv += ["--access-logfile", str(access_log), "--access-logformat", "%(s)s %(U)s"]
        self.start("gunicorn", argv)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{base}/bench/bare/"), 30, "gunicorn")
        return base

    def celery(self) -> None:
        """One worker and exactly one beat, as in the Procfile."""
        celery = [str(BIN / "celery"), "-A", "labflow"]
        self.start("worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2",
                              "--without-mingle", "--without-gossip"])  # fmt: skip
        self.start("beat", [*celery, "beat", "--loglevel", "INFO"])

    def check_alive(self) -> None:
        for name, (process, _) in self.running.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_dir / name}.log")

    def stop(self) -> None:
        for process, _ in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process, log in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
                process.wait(timeout=10)
            log.close()
        self.running.clear()


def install_stop_handlers(total_seconds: float) -> None:
    """SIGTERM and a hard alarm raise in the main thread, so every `finally` (process cleanup) runs."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    def alarm(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"run exceeded its hard limit of {total_seconds:.0f} s")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(total_seconds))


def machine_facts() -> dict[str, str]:
    return {
        "cpu": cpu_model("unknown"),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def run_and_report(
    run: Callable[[], dict[str, Any]],
    print_report: Callable[[dict[str, Any]], None],
    json_path: Path | None,
    total_seconds: float,
) -> dict[str, Any]:
    """`run()` under a hard limit of `total_seconds`, plus the machine's facts (`machine`), then print its report
    (and write it as JSON if asked)."""
    install_stop_handlers(total_seconds)
    try:
        result = run()
    finally:
        signal.alarm(0)
    result["machine"] = machine_facts()
    print_report(result)
    if json_path:
        json_path.write_text(json.dumps(result, indent=2, default=str))
    return result
