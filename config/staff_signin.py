"""Staff sessions: one past ``SESSION_MAX_HOURS`` ends; while a second factor is owed (``STAFF_2FA``), every
admin page sends the user to the second-factor step (or enrolment) and every API call made with the session is
refused with 403 ``second_factor_required``. Service tokens (``Authorization: Bearer``) are not sessions and
pass untouched. It runs outside the views, so a database that is down is answered here as the views' own
outage middleware would (503), not with a traceback."""

from django.contrib.auth import logout
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from config.outage import DatabaseOutageMiddleware
from enforcement.admin.passkeys import MOUNT as PASSKEY_ENDPOINTS
from enforcement.admin.second_factor import verify_url
from enforcement.api.exceptions import API_PREFIX, error_body
from enforcement.signin import needs_second_factor, session_is_past_its_limit


class IdleTimeoutSessionMiddleware(SessionMiddleware):
    """Django's, saving the session on every answer (``SESSION_SAVE_EVERY_REQUEST``) so that its expiry, the idle
    timeout, moves with use; but not on an error answer: with the database down, saving would turn a 503 into
    a 500."""

    def process_response(self, request, response):
        if response.status_code >= 500:
            return response
        return super().process_response(request, response)


class StaffSignInMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.outage = DatabaseOutageMiddleware(get_response)

    def __call__(self, request):
        try:
            refusal = self.refusal(request)
        except (OperationalError, InterfaceError) as exc:
            return self.outage.process_exception(request, exc)
        return refusal or self.get_response(request)

    def refusal(self, request):
        user = request.user
        if not user.is_authenticated:
            return None
        admin_root = reverse("admin:index")
        if session_is_past_its_limit(request):
            logout(request)
            if request.path.startswith(admin_root):
                return redirect(f"{reverse('admin:login')}?{urlencode({'next': request.get_full_path()})}")
            return None
        if not needs_second_factor(user):
            return None
        if request.path.startswith(API_PREFIX):
            if request.META.get("HTTP_AUTHORIZATION", "").startswith("Bearer "):
                return None  # DRF tries the service token first; the session plays no part
            return JsonResponse(error_body(
                "second_factor_required",
                "Sign in to the console with your second factor first; a password alone opens nothing.",
            ), status=403)
        if request.path.startswith(admin_root) and not self.open_without_it(request.path):
            return redirect(verify_url(request.get_full_path()))
        return None

    @staticmethod
    def open_without_it(path: str) -> bool:
        """Signing in, signing out and the second-factor step itself (with its passkey endpoints)."""
        return path.startswith(f"/{PASSKEY_ENDPOINTS}") or path in {
            reverse("admin:login"), reverse("admin:logout"), reverse("admin:jsi18n"),
            reverse("admin:second_factor_verify"), reverse("admin:second_factor_enrol")}
