"""Helpers shared by the benchmark scripts.

- environment and database: `configure_django`, `database_name`, `admin_connect`, `ensure_database`,
  `recreate_database`, `migrate`, `setup_database`;
- SQL one-liners (Django set up first): `execute`, `scalar`;
- fixtures: `make_user`, `refresh_heartbeat`;
- figures and reports: `percentile`, `percentile_linear`, `cpu_model`, `software_facts`, `server_settings`,
  `load_facts`, `run_facts`, `print_facts`, `git_revision`.

Every script puts the repository root on sys.path itself (before it can import this module); nothing here
imports Django at module level, so importing this module configures nothing.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from accounts.choices import Role
    from patients.models import CareTeam

ROOT = Path(__file__).resolve().parent.parent

Params = Sequence[Any] | Mapping[str, Any] | None

# --------------------------------------------------------------------------------------- environment, database


def configure_django(default_database_url: str, redis_url: str | None = None) -> None:
    """The test settings, DATABASE_URL (unless set) and an own Redis database; call before `django.setup()`."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "labflow.settings_test"
    os.environ.setdefault("DATABASE_URL", default_database_url)
    if redis_url is not None:
        os.environ["REDIS_URL"] = redis_url


def stderr(message: str) -> None:
    print(message, file=sys.stderr)


TRUNCATE_REFUSAL = "refusing to run: the benchmark TRUNCATEs tables, and database {name!r} is not named *bench*"


def database_name(url: str, refusal: str = TRUNCATE_REFUSAL) -> str:
    """The database name of `url`; exits with `refusal` (formatted with `name`) unless it contains "bench"."""
    name = str(conninfo_to_dict(url).get("dbname") or "")
    if "bench" not in name:
        sys.exit(refusal.format(name=name))
    return name


def admin_connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection to the server's `postgres` database (for CREATE / DROP DATABASE)."""
    return psycopg.connect(url, dbname="postgres", autocommit=True, connect_timeout=10)


def ensure_database(
    url: str,
    *,
    recreate: bool = False,
    log: Callable[[str], None] | None = stderr,
    refusal: str = TRUNCATE_REFUSAL,
) -> str:
    """Create the benchmark database if it is missing (with `recreate`, DROP it first); return its name.

    Refuses a database whose name lacks "bench"; `log` (if any) is told what was dropped and created."""
    name = database_name(url, refusal)
    with admin_connect(url) as conn:
        if recreate:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            if log is not None:
                log(f"dropped database {name}")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            if log is not None:
                log(f"created database {name}")
    return name


def recreate_database(database_url: str) -> None:
    """DROP and CREATE the benchmark database, quietly (refuses a name without "bench")."""
    ensure_database(
        database_url,
        recreate=True,
        log=None,
        refusal="refusing to recreate database {name!r}: its name must contain 'bench'",
    )


def migrate() -> None:
    """`manage.py migrate`, quietly (Django set up first)."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def setup_database(*, recreate: bool = False, statement_timeout: str = "10min") -> None:
    """The database of DATABASE_URL created if missing (re-created with `recreate`), Django set up, migrated, and
    every statement of this connection, the load included, bounded by `statement_timeout`."""
    import django

    ensure_database(os.environ["DATABASE_URL"], recreate=recreate)
    django.setup()
    migrate()
    execute(f"SET statement_timeout = '{statement_timeout}'")


# --------------------------------------------------------------------------------------- SQL one-liners


def execute(statement: str, params: Params = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def scalar(statement: str, params: Params = None) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    assert row is not None
    return row[0]


# --------------------------------------------------------------------------------------- fixtures


def make_user(
    username: str,
    role: Role,
    *,
    password: str,
    first_name: str = "",
    last_name: str = "",
    team: CareTeam | None = None,
) -> User:
    """A user with a password, in the group of `role`, and (with `team`) a member of it in the same role."""
    from django.contrib.auth.models import Group
    from django.contrib.auth.models import User as UserModel

    from patients.choices import CareTeamRole
    from patients.models import CareTeamMembership

    account = UserModel.objects.create_user(username, first_name=first_name, last_name=last_name, password=password)
    account.groups.add(Group.objects.get(name=role.label))
    if team is not None:
        CareTeamMembership.objects.create(care_team=team, user=account, role=CareTeamRole(role.value))
    return account


def refresh_heartbeat() -> None:
    """The sweep is not running: keep its heartbeat fresh so the inbox shows its normal state (no warning)."""
    from monitoring.services import sweep_heartbeat_record

    sweep_heartbeat_record(name="overdue_sweep", flagged=0)


# --------------------------------------------------------------------------------------- figures, reports


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def percentile_linear(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 1]."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def cpu_model(default: str | None = None) -> str:
    """The CPU's model name (/proc/cpuinfo); else `default`, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default if default is not None else platform.processor() or platform.machine()


def software_facts() -> dict[str, str]:
    """PostgreSQL, Python, Django, psycopg and the measured code (Django set up first)."""
    import django

    return {
        "PostgreSQL": str(scalar("SHOW server_version")),
        "Python": platform.python_version(),
        "Django": django.get_version(),
        "psycopg": psycopg.__version__,
        "code": git_revision(),
    }


def server_settings(*names: str) -> dict[str, str]:
    """PostgreSQL settings by name (`SHOW`)."""
    return {name: str(scalar(f"SHOW {name}")) for name in names}


def database_fact() -> dict[str, str]:
    from django.db import connection

    return {"database": str(connection.settings_dict["NAME"])}


def load_facts(load_at_start: tuple[float, float, float]) -> dict[str, str]:
    """The load average when the run started and now."""
    return {
        "load average (1/5/15 min) at start": " / ".join(f"{v:.2f}" for v in load_at_start),
        "load average (1/5/15 min) at end": " / ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def run_facts(load_at_start: tuple[float, float, float]) -> dict[str, str]:
    """Where a database benchmark ran: CPUs, software, the server's write settings, the database, the load."""
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "CPU": platform.processor() or platform.machine(),
        **software_facts(),
        **server_settings("shared_buffers", "synchronous_commit", "fsync", "jit"),
        **database_fact(),
        **load_facts(load_at_start),
    }


def print_facts(title: str, facts: Mapping[str, object]) -> None:
    """A Markdown section: `## title`, then one `- key: value` line per fact."""
    print(f"\n## {title}\n")
    for key, value in facts.items():
        print(f"- {key}: {value}")


def git_revision() -> str:
    """The measured code: `git describe` of the work tree, 'unknown' outside a checkout."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()
