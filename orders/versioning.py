"""Rules kept as data in versions (hold rules, lab pattern rules): an edit is a new row with the same key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from core.errors import Conflict
from orders.models import VersionedRule

Rule = TypeVar("Rule", bound=VersionedRule)


class RuleVersionConflict(Conflict):
    """Only the current version of a rule can be revised (HTTP 409)."""


def revised_values(rule: VersionedRule, fields: Sequence[str], changes: dict[str, Any]) -> dict[str, Any]:
    """The new version's values: the changes over the rule's own; a field that cannot be revised is refused."""
    relations = {f.name for f in rule._meta.many_to_many}
    unknown = set(changes) - {*fields, *relations}
    if unknown:
        raise ValidationError({name: "This field cannot be revised." for name in sorted(unknown)})
    return {name: changes.get(name, getattr(rule, name)) for name in fields}


@transaction.atomic
def rule_revise(
    *, rule: Rule, fields: Sequence[str], changes: dict[str, Any], user: User | None, now: datetime
) -> Rule:
    """A new version of `rule` with `changes` (its many-to-many relations carry over unless named); the old one
    is kept, inactive and superseded. Validate the values (`revised_values`) before calling."""
    model = type(rule)
    current = model._default_manager.select_for_update().get(pk=rule.pk)
    if not current.active or current.superseded_by is not None:
        raise RuleVersionConflict(f"Version {current.version} of {current.key} is no longer current.")
    values = revised_values(current, fields, changes)
    model._default_manager.filter(pk=current.pk).update(active=False)  # frees the key's one active version
    new = model._default_manager.create(
        key=current.key, version=current.version + 1, created_at=now, created_by=user, **values
    )
    for relation in current._meta.many_to_many:
        getattr(new, relation.name).set(changes.get(relation.name, getattr(current, relation.name).all()))
    model._default_manager.filter(pk=current.pk).update(superseded_by=new)
    return new
