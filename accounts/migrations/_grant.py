"""Shared by the role migrations (the loader skips modules starting with an underscore)."""

from django.contrib.auth.management import create_permissions


def grant(apps, role_permissions):
    """Add each role's permissions to its group, creating groups and permissions as needed."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in role_permissions.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, codename in codenames:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
