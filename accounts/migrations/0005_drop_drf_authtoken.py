"""API tokens moved from DRF's authtoken (plain keys that never expired) to django-rest-knox (digests that
expire). The old tokens are not clinical data: their table and permissions go, their holders log in again."""

from django.db import migrations


def forget_authtoken(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="authtoken").delete()  # and, by cascade, its permissions


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_order_permissions"), ("contenttypes", "0002_remove_content_type_name")]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token", migrations.RunSQL.noop),
        migrations.RunSQL("DELETE FROM django_migrations WHERE app = 'authtoken'", migrations.RunSQL.noop),
        migrations.RunPython(forget_authtoken, migrations.RunPython.noop),
    ]
