"""API tokens in the admin: by prefix, owner and expiry only, never the token or its digest; revoke, not edit."""

from __future__ import annotations

from typing import Any

import knox.admin  # noqa: F401  # registers knox's own admin first, so that it can be replaced
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from knox.models import AuthToken

from accounts.services import api_tokens_revoke_selected

# knox's own admin lists the digest and lets an admin mint a token for someone else: replaced.
admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin[AuthToken]):
    list_display = ["token_key", "user", "created", "expiry"]
    list_display_links = None  # no change page: a token is issued by logging in and only ever revoked
    list_select_related = ["user"]
    search_fields = ["user__username", "token_key"]
    ordering = ["-created"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "revoke" says what it does
        return actions

    @admin.action(description="Revoke the selected tokens", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[AuthToken]) -> None:
        revoked = api_tokens_revoke_selected(tokens=queryset)
        self.message_user(request, f"{revoked} token(s) revoked.")


class _NoDelete:
    """Users and roles are deactivated or changed, never deleted: their names stand in the audit trail and the
    runtime database role has no DELETE on them (docs/architecture.md §5)."""

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class LabFlowUserAdmin(_NoDelete, UserAdmin):
    pass


@admin.register(Group)
class RoleAdmin(_NoDelete, GroupAdmin):
    pass
