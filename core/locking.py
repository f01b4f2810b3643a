"""Row locks for state changes: a step reads the row it changes under FOR UPDATE, so two requests cannot both
pass the same state check."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model

M = TypeVar("M", bound=Model)


def locked(instance: M, *related: str) -> M:
    """`instance`'s row read again and locked until the transaction ends; `related` rows are read, not locked."""
    manager = type(instance)._default_manager
    return manager.select_for_update(of=("self",)).select_related(*related).get(pk=instance.pk)
