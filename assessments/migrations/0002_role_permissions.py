from django.db import migrations

# Nurses record assessments at the bedside and oncologists may too; lab staff neither see nor record them.
ROLE_PERMISSIONS = {
    "Nurse": [("assessments", "view_assessment"), ("assessments", "add_assessment")],
    "Oncologist": [("assessments", "view_assessment"), ("assessments", "add_assessment")],
}


def grant(apps, schema_editor):
    from accounts.migrations import _grant

    _grant.grant(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("assessments", "0001_initial"), ("accounts", "0001_roles")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
