"""The runtime database role (docs/architecture.md §5 Runtime, §7 Safety promises).

Two roles: the owner runs `migrate` and owns every table; web, worker, beat and the MLLP listener connect as the
runtime role, which has only the DML the product needs. It owns nothing and has no TRUNCATE, no DDL and no
superuser rights, so the application cannot switch the audit triggers off, drop or empty an audit table, or
delete a clinical row. `manage.py db_roles`, run by the owner after every `migrate`, applies this and then checks
it; it is idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

import pghistory.models
from django.apps import apps
from django.db import ProgrammingError, connections, transaction
from django.db.backends.utils import CursorWrapper
from psycopg import errors, sql

DEFAULT_ROLE = "labflow_app"
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")

# The only tables the runtime role may DELETE from, and why. Clinical tables (patients, tests, specimens,
# results, alerts, courses, doses, preparations, catalogues) and the audit trail are not here: their rows are
# corrected by new versions, never deleted (§7).
DELETABLE_TABLES: dict[str, str] = {
    "django_session": "logout and the session key rotated at login delete the session row",
    "knox_authtoken": "logout, an expired token and the admin's revoke delete the API token",
    "authtoken_token": "an API token is revoked by deleting it",
    "axes_accessattempt": "a successful login clears the failed attempts (AXES_RESET_ON_SUCCESS)",
    "axes_accessattemptexpiration": "goes with its access attempt",
    "axes_accessfailurelog": "django-axes prunes old failure records",
    "axes_accesslog": "django-axes prunes old login records",
    "auth_user_groups": "the admin takes a role from a user",
    "auth_user_user_permissions": "the admin takes a permission from a user",
    "auth_group_permissions": "the admin takes a permission from a role",
    "patients_careteammembership": "the admin removes a member from a care team",
    "alerts_escalationrung": "the admin edits a team's escalation ladder",
    "alerts_teamalertpolicy": "the admin removes a team's quiet hours",
    "monitoring_labtest_components": "the admin edits a panel's components",
    "orders_monitoringrule": "the admin removes a row of a regimen's monitoring plan (inline)",
    "orders_regimendoseband": "the admin removes a regimen's weight band (inline)",
}
# Readable only: migrations are recorded by the owner.
READ_ONLY_TABLES = ("django_migrations",)
# The privileges the runtime role must never hold on any table.
FORBIDDEN_TABLE_PRIVILEGES = ("TRUNCATE", "REFERENCES", "TRIGGER")


class RoleError(Exception):
    """The runtime role could not be set up as required; the message says what is wrong."""


@dataclass(frozen=True)
class RoleReport:
    role: str
    created: bool
    tables: int
    audit_tables: int
    deletable: tuple[str, ...]


def audit_tables() -> list[str]:
    """The append-only audit trail: every pghistory event table. The runtime role adds rows (the triggers run
    as the role that writes), never changes or deletes them."""
    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, pghistory.models.Event) and model._meta.managed and not model._meta.proxy
    )


def validate_role_name(role: str) -> str:
    if not _ROLE_NAME.match(role):
        raise RoleError(f"role name {role!r}: use lower-case letters, digits and _ (at most 63), not a digit first")
    return role


def apply_runtime_role(role: str, *, password: str | None = None, using: str = "default") -> RoleReport:
    """Create the runtime role if missing, grant it exactly its privileges on every table of the current schema,
    set the default privileges for tables later migrations make, then check the result (RoleError if wrong).
    One transaction: on any error nothing changes."""
    validate_role_name(role)
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:

        def run(statement: sql.Composable) -> None:
            cursor.execute(statement.as_string(connection.connection))

        cursor.execute("SELECT current_user, current_schema(), current_database()")
        owner, schema, database = cursor.fetchone()
        if role == owner:
            raise RoleError(f"role {role!r} runs db_roles (the owner); the runtime role must be another role")
        ident = sql.Identifier(role)
        attributes = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")
        secret: sql.Composable = sql.SQL("")
        if password:
            # Hashed here (SCRAM), so the password never reaches the server's statement log in clear.
            hashed = connection.connection.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
            secret = sql.SQL(" PASSWORD {}").format(sql.Literal(hashed.decode()))
        created = False
        cursor.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [role])
        row = cursor.fetchone()
        if row is None:
            try:
                with transaction.atomic(using=using):
                    run(sql.SQL("CREATE ROLE {} {}{}").format(ident, attributes, secret))
                created = True
            except ProgrammingError as error:
                if not isinstance(error.__cause__, errors.DuplicateObject):
                    raise RoleError(f"cannot create role {role!r} (the owner needs CREATEROLE): {error}") from error
                row = (False,)  # created meanwhile by a concurrent run (roles are cluster-wide)
        if not created and (password or not row[0]):
            run(sql.SQL("ALTER ROLE {} LOGIN{}").format(ident, secret))

        tables = _tables(cursor, schema)
        audit = [t for t in audit_tables() if t in tables]
        grants: list[sql.Composable] = [
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), ident),
            # PostgreSQL before 15 lets every role create tables in public; only the owner should.
            sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(schema)),
            sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(sql.Identifier(schema), ident),
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), ident),
            # From nothing each time, so a table taken off DELETABLE_TABLES loses its DELETE.
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(sql.Identifier(schema), ident),
            sql.SQL("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {} TO {}").format(
                sql.Identifier(schema), ident
            ),
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(sql.Identifier(schema), ident),
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(sql.Identifier(schema), ident),
            # Tables and sequences that later migrations create (as this owner) get the same plain DML at once;
            # the next db_roles run narrows audit tables and adds DELETE where listed.
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT, INSERT, UPDATE ON TABLES TO {}").format(
                sql.Identifier(schema), ident
            ),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
                sql.Identifier(schema), ident
            ),
        ]
        grants += [sql.SQL("REVOKE UPDATE ON {} FROM {}").format(_table(schema, t), ident) for t in audit]
        grants += [
            sql.SQL("REVOKE INSERT, UPDATE ON {} FROM {}").format(_table(schema, t), ident)
            for t in READ_ONLY_TABLES
            if t in tables
        ]
        deletable = tuple(t for t in DELETABLE_TABLES if t in tables)
        grants += [sql.SQL("GRANT DELETE ON {} TO {}").format(_table(schema, t), ident) for t in deletable]
        for statement in grants:
            run(statement)

        problems = check_runtime_role(role, using=using)
        if problems:
            raise RoleError(f"runtime role {role!r} is not safe:\n  " + "\n  ".join(problems))
    return RoleReport(role=role, created=created, tables=len(tables), audit_tables=len(audit), deletable=deletable)


def check_runtime_role(role: str, *, using: str = "default") -> list[str]:
    """What is wrong with the runtime role in this database, as sentences (empty: nothing)."""
    problems: list[str] = []
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT oid, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = %s",
            [role],
        )
        row = cursor.fetchone()
        if row is None:
            return [f"role {role!r} does not exist"]
        oid, *flags = row
        for flag, name in zip(flags, ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS"), strict=True):
            if flag:
                problems.append(f"has {name} (a superuser must ALTER ROLE {role} NO{name})")
        cursor.execute(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = %s", [oid]
        )
        problems += [f"is a member of role {name!r} and would hold its rights" for (name,) in cursor.fetchall()]
        cursor.execute("SELECT datdba = %s FROM pg_database WHERE datname = current_database()", [oid])
        if cursor.fetchone()[0]:
            problems.append("owns the database")
        cursor.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relowner = %s ORDER BY 1",
            [oid],
        )
        problems += [f"owns {name}" for (name,) in cursor.fetchall()]
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspowner = %s", [oid])
        problems += [f"owns schema {name}" for (name,) in cursor.fetchall()]
        cursor.execute(
            "SELECT has_schema_privilege(%s, current_schema(), 'CREATE'), "
            "has_database_privilege(%s, current_database(), 'CREATE')",
            [role, role],
        )
        schema_create, database_create = cursor.fetchone()
        if schema_create:
            problems.append("may CREATE in the schema (REVOKE CREATE ON SCHEMA public FROM PUBLIC as its owner)")
        if database_create:
            problems.append("may CREATE schemas in the database")
        audit = set(audit_tables()) | {pghistory.models.Context._meta.db_table}
        cursor.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner), "
            "has_table_privilege(%(role)s, c.oid, 'SELECT'), has_table_privilege(%(role)s, c.oid, 'UPDATE'), "
            "has_table_privilege(%(role)s, c.oid, 'DELETE'), "
            "has_table_privilege(%(role)s, c.oid, 'TRUNCATE'), has_table_privilege(%(role)s, c.oid, 'REFERENCES'), "
            "has_table_privilege(%(role)s, c.oid, 'TRIGGER') "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            {"role": role},
        )
        for table, table_owner, select, update, delete, *forbidden in cursor.fetchall():
            if not select:
                problems.append(f"cannot read {table} (owned by {table_owner}: grant it from the owner)")
            if delete and table not in DELETABLE_TABLES:
                problems.append(f"may DELETE from {table}")
            if update and table in audit - {pghistory.models.Context._meta.db_table}:
                problems.append(f"may UPDATE the audit table {table}")
            problems += [
                f"has {name} on {table}"
                for name, held in zip(FORBIDDEN_TABLE_PRIVILEGES, forbidden, strict=True)
                if held
            ]
    return problems


def runtime_database_url(role: str, password: str | None, *, using: str = "default") -> str:
    """The DATABASE_URL of `using` with the runtime role's credentials: what web, worker, beat and the MLLP
    listener are given."""
    db = connections[using].settings_dict
    host = db["HOST"] or ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    socket = db["OPTIONS"].get("host")
    query = f"?host={quote(socket, safe='/')}" if socket else ""
    credentials = quote(role, safe="") + (f":{quote(password, safe='')}" if password else "")
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}{query}"


def _tables(cursor: CursorWrapper, schema: str) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
        [schema],
    )
    return {name for (name,) in cursor.fetchall()}


def _table(schema: str, table: str) -> sql.Composable:
    return sql.Identifier(schema, table)
