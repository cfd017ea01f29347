"""Reporting sources: who owns each one (the token or person reporting under it). Leads hand a source over."""

from django import forms
from django.contrib import admin, messages

from enforcement import services
from enforcement.actors import MANAGE_TOKENS
from enforcement.admin.buttons import actor_for
from enforcement.errors import ServiceError
from enforcement.models import Source


class SourceOwnerForm(forms.ModelForm):
    class Meta:
        model = Source
        fields = ["owner_user", "owner_token"]

    def clean(self):
        data = super().clean()
        if bool(data.get("owner_user")) == bool(data.get("owner_token")):
            raise forms.ValidationError("Give the source one owner: a staff member or a service token.")
        return data


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    """(source, external_id) identifies a report, so a source belongs to one reporter; see services.sources."""

    form = SourceOwnerForm
    list_display = ("name", "owner", "reserved", "act_first_withheld_at", "created_at")
    list_filter = ("reserved", ("act_first_withheld_at", admin.EmptyFieldListFilter))
    search_fields = ("name",)
    readonly_fields = ("name", "reserved", "act_first_withheld_at", "created_at")
    fields = ("name", "reserved", "owner_user", "owner_token", "act_first_withheld_at", "created_at")
    list_select_related = ("owner_user", "owner_token")

    @admin.display(description="Owner")
    def owner(self, source):
        if source.reserved:
            return "the console (reserved)"
        if source.owner_token_id:
            return f"token:{source.owner_token.name}"
        return source.owner_user.get_username() if source.owner_user_id else "-"

    def has_add_permission(self, request):
        return False  # a source comes into being with its first report

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return actor_for(request).can(MANAGE_TOKENS) and (obj is None or not obj.reserved)

    def save_model(self, request, obj, form, change):
        try:
            services.source_reassign(actor=actor_for(request), source_id=obj.pk, owner_user_id=obj.owner_user_id,
                                     owner_token_id=obj.owner_token_id)
        except ServiceError as exc:
            messages.error(request, exc.message)
