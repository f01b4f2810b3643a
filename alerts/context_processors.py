from __future__ import annotations

from django.http import HttpRequest

from alerts.burden import user_sees_burden
from alerts.selectors import alert_open_count


def alert_count(request: HttpRequest) -> dict[str, object]:
    if not request.user.is_authenticated:
        return {}
    return {
        "header_alert_count": alert_open_count(user=request.user),
        "show_alert_burden": user_sees_burden(user=request.user),
    }
