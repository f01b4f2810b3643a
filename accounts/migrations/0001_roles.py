"""Roles are Django groups with their permissions (docs/architecture.md §1)."""

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
    from accounts.migrations import _grant

    _grant.grant(apps, ROLE_PERMISSIONS)


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
