"""Rules: the policy as data, the one workflow table edited in the admin (by leads)."""

from django.contrib import admin

from enforcement import services
from enforcement.admin.buttons import actor_for
from enforcement.admin.forms import RuleAdminForm
from enforcement.admin.second_factor import requires_recent_second_factor
from enforcement.models import Rule


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    """The policy as data: leads edit it, every change is in the audit log."""

    form = RuleAdminForm
    list_display = ("code", "title", "default_severity", "act_first", "auto_action", "ladder_overrides", "is_active")
    list_filter = ("default_severity", "act_first", "auto_action", "is_active")
    search_fields = ("code", "title")

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False  # violations refer to rules; retire one with "is active"

    @requires_recent_second_factor
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """Adding or editing a rule changes the policy: it asks for a recent second factor (viewing too, so
        the form is not lost to the step)."""
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        services.rule_save(actor=actor_for(request), rule=obj)  # the form validated; the service audits
