"""Rules: the policy as data, the one workflow table edited in the admin (by leads).

Before saving, a lead can press "Preview the effect": the form is checked, the rule's recent decisions are
replayed under the policy it holds (``services.policy_simulate``), and the page comes back with the counts, a
few examples and the form as it was filled in; "Save" then records the new version as always.
"""

from django.contrib import admin

from enforcement import services
from enforcement.admin.buttons import actor_for
from enforcement.admin.forms import PolicyPreviewForm, RuleAdminForm
from enforcement.admin.second_factor import requires_recent_second_factor
from enforcement.errors import ValidationFailed
from enforcement.models import Rule

PREVIEW = "_preview"  # the name of the "Preview the effect" button


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

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)  # a class of its own, made for this request
        form.previewing = obj is not None and request.method == "POST" and PREVIEW in request.POST
        return form

    def save_model(self, request, obj, form, change):
        services.rule_save(actor=actor_for(request), rule=obj)  # the form validated; the service audits

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        preview = PolicyPreviewForm(request.POST if form.previewing else None)
        context["preview_form"] = preview
        if form.previewing and not form.errors and preview.is_valid():
            changes = {name: form.cleaned_data[name] for name in services.POLICY_FIELDS}
            try:
                context["simulation"] = services.policy_simulate(
                    rule_code=obj.code, changes=changes, days=preview.cleaned_data["preview_days"]
                )
            except ValidationFailed as refused:
                context["preview_problems"] = [problem for problems in refused.fields.values() for problem in problems]
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)
