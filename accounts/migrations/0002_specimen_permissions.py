from django.db import migrations

ROLE_PERMISSIONS = {
    "Lab technician": [
        ("specimens", "view_specimen"),
        ("specimens", "view_container"),
        ("specimens", "collect_specimen"),
        ("specimens", "receive_specimen"),
        ("specimens", "reject_specimen"),
        ("specimens", "record_custody"),
    ],
    "Oncologist": [("specimens", "view_specimen"), ("specimens", "view_container")],
    "Nurse": [
        ("specimens", "view_specimen"),
        ("specimens", "view_container"),
        ("specimens", "collect_specimen"),
        ("specimens", "record_custody"),
    ],
}


def grant(apps, schema_editor):
    from accounts.migrations import _grant

    _grant.grant(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_roles"), ("specimens", "0002_accession_sequence_and_catalogue")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
