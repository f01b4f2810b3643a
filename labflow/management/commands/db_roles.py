"""Set up the runtime database role: `manage.py db_roles`, run as the owner after `migrate` (labflow/db_roles.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from labflow.db_roles import RoleError, apply_runtime_role, runtime_database_url


class Command(BaseCommand):
    help = (
        "Create or update the runtime database role (web, worker, beat, MLLP listener): only the DML LabFlow needs, "
        "no TRUNCATE, no DDL, owns nothing. Run it as the owner after every migrate; it is idempotent. The password "
        "comes from DATABASE_RUNTIME_PASSWORD, never the command line."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--role", default=settings.DATABASE_RUNTIME_ROLE, help="default: DATABASE_RUNTIME_ROLE")
        parser.add_argument("--database", default="default", help="the connection to use (the owner's)")
        parser.add_argument(
            "--print-url", action="store_true", help="print only the runtime role's DATABASE_URL (for make run)"
        )

    def handle(self, *args: Any, role: str, database: str, print_url: bool, **_: Any) -> None:
        password = settings.DATABASE_RUNTIME_PASSWORD or None
        try:
            report = apply_runtime_role(role, password=password, using=database)
        except RoleError as error:
            raise CommandError(str(error)) from error
        if print_url:
            self.stdout.write(runtime_database_url(role, password, using=database))
            return
        self.stdout.write(
            f"Runtime role {report.role} ({'created' if report.created else 'updated'}): SELECT, INSERT, UPDATE on "
            f"{report.tables} tables, audit tables ({report.audit_tables}) append-only, DELETE only on "
            f"{', '.join(report.deletable)}; no TRUNCATE, no DDL, owns nothing."
        )
