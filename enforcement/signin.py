"""Staff sign-in: who must give a second factor, how recent it is, the lockout it shares with the password, the
devices (passkeys, authenticator apps, recovery codes) and the audit trail of signing in.

Sign-in, sign-out, failures, lockouts, enrolments, removals and unlocks are audit events with the staff
member as the target. Django's and axes' signals call ``signin_record``; the second-factor pages call it too.

A wrong second-factor code or a failed passkey counts toward the lockout exactly as a wrong password does
(``second_factor_failed`` sends Django's ``user_login_failed``, which axes counts per username and address).
The counts are cleared only when the whole sign-in succeeds (``signin_completed``), never by the password
alone, so signing in again with the password does not buy another ten guesses at the code.
"""

import time

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_credentials
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django_otp import device_classes, devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from enforcement.actors import SYSTEM, Actor
from enforcement.audit import audit_record
from enforcement.models import AuditEvent

SESSION_SIGNED_IN_AT = "staff_signed_in_at"
SESSION_VERIFIED_AT = "staff_second_factor_at"
SESSION_NEW_RECOVERY_CODES = "staff_new_recovery_codes"  # shown once after enrolling with a passkey
RECOVERY_CODES = 10


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
    """Any confirmed device of any kind (passkey, app, recovery codes), in one query: it is asked on every
    request of a signed-in user."""
    if not user.is_authenticated:
        return False
    kinds = [model.objects.filter(user=user, confirmed=True).values("user_id") for model in device_classes()]
    return kinds[0].union(*kinds[1:]).exists()


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


# --------------------------------------------------------------------------- lockout


def _credentials(user) -> dict:
    return get_credentials(user.get_username())


def is_locked_out(request, user) -> bool:
    """Is this user's name, or the address the request comes from, locked now (axes' own count)?"""
    return AxesProxyHandler.is_locked(request, _credentials(user))


def second_factor_failed(request, user, method: str) -> bool:
    """A wrong code (``method`` ``code``) or a failed passkey (``passkey``) after a right password: counted as a
    failed sign-in for the user's name and the address, and audited (``signin.second_factor_failed``; the one
    that reaches the limit also ``signin.locked_out``). True when it locks them out."""
    request.axes_locked_out = False
    user_login_failed.send(sender=__name__, credentials={**_credentials(user), "second_factor": method},
                           request=request)
    return bool(getattr(request, "axes_locked_out", False))


def signin_completed(request, user) -> None:
    """The whole sign-in succeeded (the password, and the second factor when one is owed): clear the failures
    counted for the user's name and the address, as axes' reset on success would."""
    AxesProxyHandler.update_request(request)
    AxesProxyHandler.get_implementation().reset_user_attempts(request, _credentials(user))


def second_factor_verified(request, user, *, device=None) -> None:
    """The session's second factor was just given (after ``django_otp.login``): the step-up clock starts, a
    sign-in with ``device`` is audited (an enrolment is, by ``second_factor_enrolled``), and the whole sign-in
    is complete. Codes and passkeys alike end here."""
    mark_verified(request)
    if device is not None:
        signin_record(verb="signin.second_factor", user=user, request=request, actor=Actor.for_user(user),
                      after={"device": device.persistent_id, "kind": device_kind(device)})
    signin_completed(request, user)


# --------------------------------------------------------------------------- devices


def device_kind(device) -> str:
    if isinstance(device, WebAuthnCredential):
        return "passkey"
    if isinstance(device, TOTPDevice):
        return "authenticator app"
    if isinstance(device, StaticDevice):
        return "recovery codes"
    return device.__class__.__name__


def device_rows(user) -> list[dict]:
    """The user's confirmed devices, for the pages that list and remove them."""
    rows = []
    for device in devices_for_user(user, confirmed=True):
        row = {"id": device.persistent_id, "name": device.name, "kind": device_kind(device),
               "created": getattr(device, "created_at", None), "last_used": getattr(device, "last_used_at", None)}
        if isinstance(device, StaticDevice):
            row["left"] = device.token_set.count()
        rows.append(row)
    return rows


def recovery_codes_issue(user) -> list[str]:
    """A new set of one-time recovery codes, replacing any the user had."""
    StaticDevice.objects.filter(user=user).delete()
    recovery = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=recovery, token=code) for code in codes)
    return codes


def second_factor_enrolled(*, user, device, request, first: bool) -> list[str]:
    """A device was added (a confirmed TOTP device, a registered passkey): on record, and on the first one the
    recovery codes are issued (returned, to be shown once)."""
    with transaction.atomic():
        codes = recovery_codes_issue(user) if first else []
        after = {"device": device.persistent_id, "kind": device_kind(device)}
        if codes:
            after["recovery_codes"] = len(codes)
        signin_record(verb="second_factor.enrolled", user=user, request=request, actor=Actor.for_user(user),
                      after=after)
    return codes


def second_factor_remove(*, actor: Actor, user, request=None, device_id: str | None = None) -> list[str]:
    """Remove one device of the user's (``device_id``, a persistent id), or all of them. Recovery codes alone
    are no second factor: when the last passkey or app goes, they go too, and the user enrols again."""
    with transaction.atomic():
        devices = list(devices_for_user(user, confirmed=None))
        if device_id is not None:
            devices = [device for device in devices if device.persistent_id == device_id]
            remaining = [device for device in devices_for_user(user, confirmed=True)
                         if device.persistent_id != device_id and not isinstance(device, StaticDevice)]
            if devices and not remaining:
                devices += [device for device in devices_for_user(user, confirmed=None)
                            if isinstance(device, StaticDevice) and device not in devices]
        removed = [device.persistent_id for device in devices]
        for device in devices:
            device.delete()
        if removed:
            signin_record(verb="second_factor.removed", user=user, request=request, actor=actor,
                          after={"devices": removed})
    return removed


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
    if request is not None and not (second_factor_required() or has_second_factor(user)):
        signin_completed(request, user)  # the password is all that is asked


@receiver(user_logged_out, dispatch_uid="enforcement.signin.logged_out")
def _signed_out(sender, request, user, **kwargs):
    if user is not None:
        signin_record(verb="signout", user=user, request=request)


@receiver(user_login_failed, dispatch_uid="enforcement.signin.login_failed")
def _sign_in_failed(sender, credentials, request=None, **kwargs):
    username = credentials.get("username") or ""
    # The attempt that reaches the limit, and every one while locked, carries ``locked``.
    after = {"locked": bool(getattr(request, "axes_locked_out", False))}
    verb = "signin.failed"
    if credentials.get("second_factor"):
        verb, after["method"] = "signin.second_factor_failed", credentials["second_factor"]
    signin_record(verb=verb, user=_user_named(username), username=username, request=request, after=after)


@receiver(user_locked_out, dispatch_uid="enforcement.signin.locked_out")
def _locked_out(sender, request, username, ip_address, **kwargs):
    signin_record(verb="signin.locked_out", user=_user_named(username), username=username or "",
                  after={"address": ip_address, "failure_limit": settings.AXES_FAILURE_LIMIT})
