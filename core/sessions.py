"""Database sessions (SESSION_ENGINE) that report an unreachable PostgreSQL as what it is.

Sessions live in PostgreSQL only, so pages and logins keep working while Redis is down (docs/architecture.md
§5). Django's database store turns any database error while updating a session into `UpdateError`, which the
session middleware answers as "the session was deleted" (400). When the database was merely unreachable (a
restart), the connection error is raised instead, so the request gets 503 + Retry-After (core/middleware.py).
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from core.middleware import is_connection_error


class SessionStore(DatabaseSessionStore):
    def save(self, must_create: bool = False) -> None:
        try:
            super().save(must_create)
        except UpdateError as error:
            cause = error.__context__
            if cause is not None and is_connection_error(cause):
                raise cause from None
            raise
