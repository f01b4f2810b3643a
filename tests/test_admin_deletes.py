"""Whatever the admin lets a superuser delete, the runtime database role may delete (docs/architecture.md §5):
anything else would reach PostgreSQL's "permission denied" as a 500."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.models import User
from django.test import RequestFactory

from labflow.db_roles import DELETABLE_TABLES


def test_admin_deletes_only_what_the_runtime_role_may_delete() -> None:
    request = RequestFactory().get("/admin/")
    request.user = User(is_superuser=True, is_active=True)
    deletable_in_admin = set()
    for model, model_admin in admin.site._registry.items():
        if model_admin.has_delete_permission(request):
            deletable_in_admin.add(model._meta.db_table)
        for inline in model_admin.get_inline_instances(request):
            if inline.can_delete and inline.has_delete_permission(request):
                deletable_in_admin.add(inline.model._meta.db_table)
    assert deletable_in_admin, "the admin deletes nothing at all: the check would prove nothing"
    assert deletable_in_admin - set(DELETABLE_TABLES) == set()
