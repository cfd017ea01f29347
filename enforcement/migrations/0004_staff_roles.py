"""The staff roles as groups with permissions: agents, leads and auditors."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_MODELS = {
    "accounts": ["account", "apikey"],
    "enforcement": [
        "rule", "case", "violation", "enforcementaction", "appeal", "comment", "notification", "auditevent",
        "servicetoken",
    ],
}
AGENT = ["work_case", "propose_action", "submit_appeal"]
LEAD = [*AGENT, "suspend_action", "approve_action", "decide_appeal", "change_rule", "change_servicetoken"]
ROLES = {"tns_agent": AGENT, "tns_lead": LEAD, "tns_auditor": []}


def forwards(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = [
        Permission.objects.get(content_type__app_label=app, codename=f"view_{model}")
        for app, models in VIEW_MODELS.items()
        for model in models
    ]
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        extra = list(Permission.objects.filter(content_type__app_label="enforcement", codename__in=codenames))
        assert len(extra) == len(codenames), (name, codenames)
        group.permissions.set([*view, *extra])


def backwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("enforcement", "0003_rule_catalogue"),
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
