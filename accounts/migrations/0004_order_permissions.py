from django.db import migrations

VIEW = [
    ("orders", "view_drug"), ("orders", "view_regimen"), ("orders", "view_treatmentcourse"), ("orders", "view_dose"),
    ("orders", "view_preparation"),
]  # fmt: skip
ROLE_PERMISSIONS = {
    "Lab technician": [*VIEW, ("orders", "prepare"), ("orders", "verify_preparation")],
    "Oncologist": [*VIEW, ("orders", "manage_course")],
    "Nurse": [*VIEW, ("orders", "administer")],
}


def grant(apps, schema_editor):
    from accounts.migrations import _grant

    _grant.grant(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_result_permissions"), ("orders", "0002_seed_catalogue")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
