from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from accounts.choices import Role
from accounts.selectors import user_roles


def roles(request: HttpRequest) -> dict[str, object]:
    user_role_set = user_roles(request.user)
    return {
        "user_roles": sorted(role.label for role in user_role_set),
        "is_nurse": Role.NURSE in user_role_set,
        "is_oncologist": Role.ONCOLOGIST in user_role_set,
        "is_lab_technician": Role.LAB_TECHNICIAN in user_role_set,
        "inbox_poll_seconds": settings.INBOX_POLL_SECONDS,
        "idle_timeout_seconds": int(settings.IDLE_TIMEOUT.total_seconds()),
        "idle_minutes": int(settings.IDLE_TIMEOUT.total_seconds() // 60),
    }
