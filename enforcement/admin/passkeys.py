"""Passkeys (WebAuthn) as the console's second factor: django-otp-webauthn's four endpoints, which its own
script (served from our static files) calls, kept to the console's rules:

- staff only, and never without the password first (``OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False``);
- registering one beside an existing second factor needs that factor, given within ``STAFF_STEP_UP_MINUTES``;
  the first one is an enrolment and issues the recovery codes (shown once, ``admin:second_factor_recovery_codes``);
- signing in with one marks the session verified (``django_otp.login``) and starts the step-up clock, like a code;
- a failed assertion counts toward the lockout like a wrong password, and a locked-out user gets nothing;
- enrolment, use and failure are audit events (``enforcement.signin``).

Mounted at ``/admin/second-factor/passkey/`` under the namespace the library's script tag expects
(``otp_webauthn``); ``config.staff_signin`` lets these through while the second factor is still owed.
"""

import json

from django.contrib.auth import logout
from django.db import transaction
from django.urls import path, reverse
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions as webauthn_errors
from django_otp_webauthn.models import WebAuthnCredential
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from enforcement.signin import (
    SESSION_NEW_RECOVERY_CODES,
    has_second_factor,
    is_locked_out,
    second_factor_enrolled,
    second_factor_failed,
    second_factor_is_recent,
    second_factor_verified,
)


class StepUpRequired(webauthn_errors.OTPWebAuthnApiError):
    status_code = 403
    default_code = "step_up_required"
    default_detail = "Give your second factor again first, then add the passkey."


class LockedOut(webauthn_errors.OTPWebAuthnApiError):
    status_code = 429
    default_code = "locked_out"
    default_detail = "Too many failed sign-ins. Sign-in is locked for now; a lead can unlock it sooner."


class StaffOnly:
    """The library's views take any signed-in user; the console's take active staff."""

    def get_user(self):
        user = self.request.user
        if user.is_authenticated and user.is_active and user.is_staff:
            return user
        return None


class RegistrationChecks(StaffOnly):
    def check_can_register(self):
        # The library has already refused a user with a device whose session is not verified.
        if has_second_factor(self.request.user) and not second_factor_is_recent(self.request):
            raise StepUpRequired()


class AuthenticationChecks(StaffOnly):
    def check_can_authenticate(self):
        super().check_can_authenticate()  # no user: passwordless sign-in is off, refused
        user = self.get_user()
        if user is not None and is_locked_out(self.request, user):
            logout(self.request)
            raise LockedOut()


class RegistrationBegin(RegistrationChecks, BeginCredentialRegistrationView):
    pass


class RegistrationComplete(RegistrationChecks, CompleteCredentialRegistrationView):
    def post(self, *args, **kwargs):
        user = self.get_user()
        first = not has_second_factor(user)
        with transaction.atomic():
            response = super().post(*args, **kwargs)
            device = WebAuthnCredential.objects.get(pk=json.loads(response.content)["id"], user=user)
            device.name = f"Passkey {WebAuthnCredential.objects.filter(user=user).count()}"
            device.save(update_fields=["name"])
            codes = second_factor_enrolled(user=user, device=device, request=self.request, first=first)
        if first:
            # The library marked the session verified with this passkey; the step-up clock starts too.
            second_factor_verified(self.request, user)
            self.request.session[SESSION_NEW_RECOVERY_CODES] = codes
        return response


class AuthenticationBegin(AuthenticationChecks, BeginCredentialAuthenticationView):
    pass


class AuthenticationComplete(AuthenticationChecks, CompleteCredentialAuthenticationView):
    def post(self, *args, **kwargs):
        user = self.get_user()
        try:
            return super().post(*args, **kwargs)
        except webauthn_errors.OTPWebAuthnApiError:
            # A wrong or replayed assertion, a passkey of someone else's: a failed sign-in.
            locked = second_factor_failed(self.request, user, "passkey")
            self.request.axes_locked_out = False  # answered here, in JSON, not by axes' lockout page
            if locked:
                logout(self.request)
                raise LockedOut() from None
            raise

    def complete_auth(self, device):
        super().complete_auth(device)  # django_otp.login: the session is verified with this passkey
        second_factor_verified(self.request, self.request.user, device=device)

    def get_success_url(self):
        return self.get_redirect_url() or reverse("admin:index")


MOUNT = "admin/second-factor/passkey/"  # config.urls mounts these here
app_name = "otp_webauthn"
urlpatterns = [
    path("registration/begin/", RegistrationBegin.as_view(), name="credential-registration-begin"),
    path("registration/complete/", RegistrationComplete.as_view(), name="credential-registration-complete"),
    path("authentication/begin/", AuthenticationBegin.as_view(), name="credential-authentication-begin"),
    path("authentication/complete/", AuthenticationComplete.as_view(), name="credential-authentication-complete"),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]), name="js-i18n-catalog"),
]
