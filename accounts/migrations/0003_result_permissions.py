from django.db import migrations

ROLE_PERMISSIONS = {
    "Lab technician": [
        ("results", "view_result"),
        ("results", "enter_result"),
        ("results", "verify_result"),
        ("results", "amend_result"),
        ("results", "add_criticalcall"),
        ("results", "view_criticalcall"),
    ],
    "Oncologist": [("results", "view_result"), ("results", "review_result"), ("results", "view_criticalcall")],
    "Nurse": [("results", "view_result"), ("results", "view_criticalcall")],
}


def grant(apps, schema_editor):
    from accounts.migrations import _grant

    _grant.grant(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_specimen_permissions"), ("results", "0002_seed_catalogue")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
