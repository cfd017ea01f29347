"""Staff sign-in: who must give a second factor, how recent it is, and the audit trail of signing in.

Sign-in, sign-out, failures, lockouts, enrolments, removals and unlocks are audit events with the staff
member as the target. Django's and axes' signals call ``signin_record``; the second-factor pages call it too.
"""

import time

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django_otp import devices_for_user

from enforcement.actors import SYSTEM, Actor
from enforcement.audit import audit_record
from enforcement.models import AuditEvent

SESSION_SIGNED_IN_AT = "staff_signed_in_at"
SESSION_VERIFIED_AT = "staff_second_factor_at"


def client_address(request) -> str | None:
    """The client's address for lockouts, as the API's throttle sees it: ``X-Forwarded-For`` counts only
    behind ``TRUSTED_PROXY_COUNT`` proxies, so a client cannot rotate the header to escape a lockout."""
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded:
        addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
        if addresses:
            return addresses[-min(proxies, len(addresses))]
    return request.META.get("REMOTE_ADDR")


def second_factor_required() -> bool:
    return settings.STAFF_2FA == "required"


def has_second_factor(user) -> bool:
    return any(devices_for_user(user, confirmed=True))


def needs_second_factor(user) -> bool:
    """Must this signed-in user give a second factor before the console opens? Everyone under
    ``STAFF_2FA=required``; under ``optional``, those who enrolled one."""
    if not user.is_authenticated or user.is_verified():
        return False
    return second_factor_required() or has_second_factor(user)


def mark_verified(request) -> None:
    """Called after ``django_otp.login``: the time the step-up check measures from."""
    request.session[SESSION_VERIFIED_AT] = time.time()


def second_factor_is_recent(request) -> bool:
    """For the gravest acts: a second factor given within ``STAFF_STEP_UP_MINUTES``. Staff without one under
    ``STAFF_2FA=optional`` have nothing to repeat, so they pass."""
    user = request.user
    if not (second_factor_required() or has_second_factor(user)):
        return True
    verified_at = request.session.get(SESSION_VERIFIED_AT)
    if not user.is_verified() or verified_at is None:
        return False
    return time.time() - float(verified_at) < settings.STAFF_STEP_UP_MINUTES * 60


def session_is_past_its_limit(request) -> bool:
    signed_in_at = request.session.get(SESSION_SIGNED_IN_AT)
    return signed_in_at is not None and time.time() - float(signed_in_at) > settings.SESSION_MAX_HOURS * 3600


def signin_record(*, verb: str, user=None, username: str = "", request=None, actor: Actor | None = None,
                  after: dict | None = None) -> AuditEvent:
    """One sign-in audit event. The target is the staff member; a username nobody has is kept in the note."""
    details = dict(after or {})
    if request is not None:
        details.setdefault("address", client_address(request))
    if actor is None:
        actor = Actor.for_user(user) if user is not None and verb in {"signin", "signout"} else SYSTEM
    with transaction.atomic():
        if user is not None:
            return audit_record(actor=actor, verb=verb, target=user, after=details or None)
        # No such user: the attempt is on record all the same, under the name that was typed.
        return AuditEvent.objects.create(**actor.audit_fields(), verb=verb, target_type="user", target_id="",
                                         after=details or None, note=f"username: {username[:150]}")


def _user_named(username: str | None):
    if not username:
        return None
    return get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()


@receiver(user_logged_in, dispatch_uid="enforcement.signin.logged_in")
def _signed_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_SIGNED_IN_AT] = time.time()
    signin_record(verb="signin", user=user, request=request)


@receiver(user_logged_out, dispatch_uid="enforcement.signin.logged_out")
def _signed_out(sender, request, user, **kwargs):
    if user is not None:
        signin_record(verb="signout", user=user, request=request)


@receiver(user_login_failed, dispatch_uid="enforcement.signin.login_failed")
def _sign_in_failed(sender, credentials, request=None, **kwargs):
    username = credentials.get("username") or ""
    # The attempt that reaches the limit, and every one while locked, carries ``locked``.
    signin_record(verb="signin.failed", user=_user_named(username), username=username, request=request,
                  after={"locked": bool(getattr(request, "axes_locked_out", False))})


@receiver(user_locked_out, dispatch_uid="enforcement.signin.locked_out")
def _locked_out(sender, request, username, ip_address, **kwargs):
    signin_record(verb="signin.locked_out", user=_user_named(username), username=username or "",
                  after={"address": ip_address, "failure_limit": settings.AXES_FAILURE_LIMIT})
