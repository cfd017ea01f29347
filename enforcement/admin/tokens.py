"""Service tokens (the API's machine credentials): listed read-only, created on a page that shows the
token once, and revoked (one by one or in bulk). ``enforcement.tokens`` does the work."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from enforcement import services
from enforcement.admin.base import admin_context, call_service, post_only, show_service_error
from enforcement.admin.buttons import actor_for
from enforcement.admin.forms import ServiceTokenCreateForm
from enforcement.admin.second_factor import requires_recent_second_factor
from enforcement.errors import ServiceError
from enforcement.models import ServiceToken


@admin.register(ServiceToken)
class ServiceTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "scopes_col", "trusted", "state", "created_at", "expires_at", "last_used_at")
    list_filter = ("trusted",)
    search_fields = ("name", "prefix")
    readonly_fields = ("name", "prefix", "scopes", "trusted", "created_by", "created_at", "expires_at", "revoked_at",
                       "last_used_at")
    fields = readonly_fields
    actions = ["revoke_selected"]
    change_form_template = "admin/enforcement/servicetoken/change_form.html"

    def may_manage_tokens(self, request) -> bool:
        return request.user.has_perm("enforcement.change_servicetoken")

    def has_add_permission(self, request):
        return self.may_manage_tokens(request)

    def has_change_permission(self, request, obj=None):
        return False  # scopes and hashes are never edited; revoke and create a new one

    def has_delete_permission(self, request, obj=None):
        return False

    def has_manage_tokens_permission(self, request):
        return self.may_manage_tokens(request)

    @admin.display(description="Scopes")
    def scopes_col(self, token):
        return ", ".join(token.scopes)

    @admin.display(description="State")
    def state(self, token):
        if token.revoked_at:
            return "revoked"
        if token.expires_at and token.expires_at <= timezone.now():
            return "expired"
        return "active"

    @admin.action(description="Revoke the selected tokens", permissions=["manage_tokens"])
    def revoke_selected(self, request, queryset):
        actor = actor_for(request)
        ids = list(queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True))
        for token_id in ids:
            services.service_token_revoke(actor=actor, token_id=token_id)
        messages.success(request, f"{len(ids)} token(s) revoked.")

    def add_view(self, request, form_url="", extra_context=None):
        return token_create_page(self, request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"may_manage": self.may_manage_tokens(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self):
        def revoke(request, token_id):
            return token_revoke(self, request, token_id)

        return [
            path("<int:token_id>/revoke/", self.admin_site.admin_view(revoke), name="enforcement_servicetoken_revoke"),
            *super().get_urls(),
        ]


@requires_recent_second_factor
def token_create_page(model_admin, request):
    """The token is shown once, in the answer to the POST; only its hash is kept."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    form = ServiceTokenCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            token, raw = services.service_token_create(
                actor=actor_for(request), name=data["name"].strip(), scopes=data["scopes"], trusted=data["trusted"],
                expires_at=data["expires_at"],
            )
        except ServiceError as exc:
            show_service_error(request, form, exc)
        else:
            context = admin_context(model_admin, request, title=f"Service token {token.name} created",
                                    token=token, raw=raw)
            # The admin marks every page never_cache (no-store included): the token is not kept anywhere.
            return TemplateResponse(request, "admin/enforcement/servicetoken/created.html", context)
    context = admin_context(model_admin, request, title="New service token", form=form)
    return TemplateResponse(request, "admin/enforcement/servicetoken/create.html", context)


@post_only
def token_revoke(model_admin, request, token_id: int):
    if not model_admin.may_manage_tokens(request):
        raise PermissionDenied
    token = ServiceToken.objects.filter(pk=token_id).first()
    if token is None:
        messages.error(request, f"No service token {token_id}.")
    else:
        call_service(request, lambda: services.service_token_revoke(actor=actor_for(request), token_id=token_id),
                     f"Service token {token.name} revoked; it no longer authenticates.")
    return HttpResponseRedirect(reverse("admin:enforcement_servicetoken_changelist"))
