"""Leads may change the mirrored inventory (accounts, keys) and revoke a key; the services check it."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def forwards(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="enforcement", codename="manage_inventory")
    for group in Group.objects.filter(name="tns_lead"):
        group.permissions.add(permission)


def backwards(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="enforcement", codename="manage_inventory").delete()


class Migration(migrations.Migration):
    dependencies = [("enforcement", "0005_case_review_met")]
    operations = [
        migrations.AlterModelOptions(
            name="enforcementaction",
            options={"ordering": ["-created_at"], "permissions": [
                ("work_case", "Can work cases: report, assign, comment, resolve, dismiss"),
                ("propose_action", "Can propose warnings and throttles, and request suspensions"),
                ("suspend_action", "Can suspend without approval and revert suspensions"),
                ("approve_action", "Can approve suspensions and terminations"),
                ("decide_appeal", "Can decide appeals"),
                ("submit_appeal", "Can record a customer's appeal"),
                ("manage_inventory", "Can change mirrored accounts and keys, and revoke a key"),
            ]},
        ),
        migrations.RunPython(forwards, backwards),
    ]
