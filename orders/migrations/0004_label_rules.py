"""Placeholder: the label catalogue and hold rules (filled in below)."""

from django.db import migrations


def seed(apps, schema_editor):
    pass


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_gate_rules_cells"),
        ("monitoring", "0009_seed_cmp_and_cell_therapy_tests"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
