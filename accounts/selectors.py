from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request

from accounts.choices import Role

AnyUser = User | AnonymousUser


def acting_user(request: HttpRequest | Request) -> User:
    """The signed-in user making a change; anonymous requests never reach a service."""
    user = request.user
    if not isinstance(user, User) or not user.is_active:
        raise PermissionDenied
    return user


def user_named(username: str) -> User | None:
    """The user with this user name (any user: a co-signer need not share the caller's teams)."""
    return User.objects.filter(username=username).first()


def user_roles(user: AnyUser) -> frozenset[Role]:
    if not user.is_authenticated:
        return frozenset()
    cached: frozenset[Role] | None = getattr(user, "_labflow_roles", None)
    if cached is None:
        labels = {role.label: role for role in Role}
        names = user.groups.values_list("name", flat=True)
        cached = frozenset(labels[name] for name in names if name in labels)
        user._labflow_roles = cached  # type: ignore[attr-defined]
    return cached


def user_has_role(user: AnyUser, role: Role) -> bool:
    return role in user_roles(user)


def user_sees_all_patients(user: AnyUser) -> bool:
    """Lab staff serve every patient; clinicians only their care teams' (docs/architecture.md §1)."""
    return user.is_authenticated and (user.is_superuser or user_has_role(user, Role.LAB_TECHNICIAN))
