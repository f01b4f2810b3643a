"""Roles are Django groups with their permissions (DESIGN.md §1)."""

from django.db import migrations

VIEW_COMMON = [
    ("patients", "view_patient"),
    ("patients", "view_careteam"),
    ("monitoring", "view_labtest"),
    ("monitoring", "view_monitoringtest"),
    ("alerts", "view_alert"),
]

ROLE_PERMISSIONS = {
    "Lab technician": [*VIEW_COMMON, ("monitoring", "record_collection")],
    "Oncologist": [
        *VIEW_COMMON,
        ("monitoring", "add_monitoringtest"),
        ("monitoring", "cancel_monitoringtest"),
        ("alerts", "handle_alert"),
    ],
    "Nurse": [
        *VIEW_COMMON,
        ("monitoring", "add_monitoringtest"),
        ("monitoring", "record_collection"),
        ("alerts", "handle_alert"),
    ],
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, codename in codenames:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("patients", "0001_initial"),
        ("alerts", "0002_initial"),
        ("monitoring", "0002_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
