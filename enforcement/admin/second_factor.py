"""The second factor in the console: the sign-in step (a passkey, TOTP or a recovery code), enrolment on first
sign-in (a passkey, or TOTP with a QR code), removing a device (by its owner, or by a lead for anyone), unlocking a
locked-out sign-in, and the step-up check before the gravest acts (``config.staff_signin`` is the middleware that
sends a session here while one is owed; the passkey ceremonies' endpoints are ``passkeys``).

Who must give one and how recent it must be is ``enforcement.signin``; this module is its entry point.
"""

import functools
from base64 import b32encode

import django_otp
import segno
from axes.helpers import get_lockout_response
from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Sum
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django_otp import match_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from enforcement.actors import ROLE_LEAD, Actor
from enforcement.signin import (
    SESSION_NEW_RECOVERY_CODES,
    device_rows,
    has_second_factor,
    is_locked_out,
    second_factor_enrolled,
    second_factor_failed,
    second_factor_is_recent,
    second_factor_remove,
    second_factor_verified,
    signin_record,
)


def _safe_next(request, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next")
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                                     require_https=request.is_secure()):
        return candidate
    return default


def verify_url(next_path: str, **extra) -> str:
    return f"{reverse('admin:second_factor_verify')}?{urlencode({'next': next_path, **extra})}"


# --------------------------------------------------------------------------- step-up


def step_up_response(request, back: str):
    """None when the second factor is recent enough for a grave act; else a redirect to give it again, which
    comes back to ``back``."""
    if second_factor_is_recent(request):
        return None
    messages.warning(request, f"This needs your second factor again (the last one is over "
                              f"{settings.STAFF_STEP_UP_MINUTES} minutes old). Then press the button again.")
    return HttpResponseRedirect(verify_url(back, step_up="1"))


def requires_recent_second_factor(view):
    """For admin views ``view(model_admin, request, ...)``: a GET comes back to itself, a button (POST) to the
    page it was pressed on (its ``next``, else the referring page)."""

    @functools.wraps(view)
    def wrapper(model_admin, request, *args, **kwargs):
        if request.method in {"GET", "HEAD"}:
            back = request.get_full_path()
        else:
            referer = request.META.get("HTTP_REFERER", "")
            fallback = referer if url_has_allowed_host_and_scheme(
                referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
            ) else reverse("admin:index")
            back = _safe_next(request, fallback)
        return step_up_response(request, back) or view(model_admin, request, *args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- pages


def _context(site, request, **extra) -> dict:
    return {**site.each_context(request), **extra}


def locked_out_response(request, user):
    """The user's name or address is locked: the session ends and the lockout page answers (as for a
    password tried while locked)."""
    credentials = {"username": user.get_username()}
    logout(request)
    return get_lockout_response(request, None, credentials)


def verify_page(site, request):
    """The sign-in step: a passkey, a code from the authenticator app, or a recovery code. Also the step-up.
    A wrong code counts toward the lockout like a wrong password; once locked, not even the right one opens."""
    user = request.user
    back = _safe_next(request, reverse("admin:index"))
    if not has_second_factor(user):
        return redirect(f"{reverse('admin:second_factor_enrol')}?{urlencode({'next': back})}")
    if is_locked_out(request, user):
        return locked_out_response(request, user)
    if request.method == "POST":
        token = "".join(request.POST.get("otp_token", "").split())
        device = match_token(user, token) if token else None
        if device is not None:
            django_otp.login(request, device)
            second_factor_verified(request, user, device=device)
            return HttpResponseRedirect(back)
        if second_factor_failed(request, user, "code"):
            return locked_out_response(request, user)
        messages.error(request, "That code is not right (or was already used). Try the current one.")
    kinds = {row["kind"] for row in device_rows(user)}
    return TemplateResponse(request, "admin/second_factor/verify.html", _context(
        site, request, title="Second factor", next=back, step_up=request.GET.get("step_up") == "1",
        has_passkey="passkey" in kinds, has_code=bool(kinds - {"passkey"})))


def enrol_page(site, request):
    """First sign-in: a passkey is registered, or an authenticator app (TOTP) is set up (a QR code, or its key
    typed in) and confirmed with a code; recovery codes are shown once either way. Only while the user has no
    second factor: a password alone never adds one beside it."""
    user = request.user
    back = _safe_next(request, reverse("admin:index"))
    if has_second_factor(user):
        return redirect(verify_url(back))
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    if request.method == "POST":
        token = "".join(request.POST.get("otp_token", "").split())
        if token and device.verify_token(token):
            with transaction.atomic():
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                codes = second_factor_enrolled(user=user, device=device, request=request, first=True)
            django_otp.login(request, device)
            second_factor_verified(request, user)
            return TemplateResponse(request, "admin/second_factor/recovery_codes.html", _context(
                site, request, title="Recovery codes", codes=codes, next=back))
        messages.error(request, "That code is not right. Check the key you typed and the clock of your phone.")
    return TemplateResponse(request, "admin/second_factor/enrol.html", _context(
        site, request, title="Set up your second factor", device=device, next=back,
        key=_base32(device.bin_key), config_url=device.config_url, qr_svg=totp_qr_svg(device.config_url),
        recovery_url=f"{reverse('admin:second_factor_recovery_codes')}?{urlencode({'next': back})}",
        passkeys_possible=_passkeys_possible(request), passkey_rp_id=settings.OTP_WEBAUTHN_RP_ID))


def totp_qr_svg(config_url: str) -> str:
    """The ``otpauth://`` setup link as a QR code, an inline SVG drawn on the server (segno; no script)."""
    qr = segno.make(config_url, error="m")
    return mark_safe(qr.svg_inline(scale=4, border=2, title="Setup link for an authenticator app",  # noqa: S308
                                   svgclass="totp-qr"))


def _passkeys_possible(request) -> bool:
    """A passkey belongs to a domain: on an IP address (http://127.0.0.1:8000) the browser refuses one."""
    host = request.get_host().rsplit(":", 1)[0].strip("[]")
    rp_id = settings.OTP_WEBAUTHN_RP_ID
    return host == rp_id or host.endswith(f".{rp_id}")


def _base32(key: bytes) -> str:
    return b32encode(key).decode()


def recovery_codes_page(site, request):
    """After enrolling with a passkey (the passkey page's script comes here): the new recovery codes, once."""
    codes = request.session.pop(SESSION_NEW_RECOVERY_CODES, None)
    back = _safe_next(request, reverse("admin:index"))
    if not codes:
        return HttpResponseRedirect(back)
    return TemplateResponse(request, "admin/second_factor/recovery_codes.html", _context(
        site, request, title="Recovery codes", codes=codes, next=back))


def devices_page(site, request):
    """Your own second factor: each device, a passkey to add beside them, one or all to remove (adding and
    removing ask for the second factor again first if it is not recent)."""
    if request.method == "POST":
        if (response := step_up_response(request, reverse("admin:second_factor_devices"))) is not None:
            return response
        removed = second_factor_remove(actor=Actor.for_user(request.user), user=request.user, request=request,
                                       device_id=request.POST.get("device") or None)
        if not has_second_factor(request.user):
            messages.success(request, "Your second factor was removed. Set up a new one to keep working.")
            return redirect("admin:second_factor_enrol")
        messages.success(request, f"{len(removed)} device(s) removed.")
        return redirect("admin:second_factor_devices")
    return TemplateResponse(request, "admin/second_factor/devices.html", _context(
        site, request, title="Your second factor", devices=device_rows(request.user),
        may_add=second_factor_is_recent(request), passkeys_possible=_passkeys_possible(request),
        step_up_url=verify_url(reverse("admin:second_factor_devices"), step_up="1"),
        recovery_url=f"{reverse('admin:second_factor_recovery_codes')}?"
                     f"{urlencode({'next': reverse('admin:second_factor_devices')})}"))


def _require_lead(request) -> Actor:
    actor = Actor.for_user(request.user)
    if actor.role != ROLE_LEAD:
        raise PermissionDenied("Only a lead may reset another person's sign-in.")
    return actor


def locked_out(now=None) -> tuple[list[dict], list[dict]]:
    """Usernames and addresses locked now: their failures within the lockout window reach the limit."""
    since = (now or timezone.now()) - settings.AXES_COOLOFF_TIME
    recent = AccessAttempt.objects.filter(attempt_time__gte=since)
    limit = settings.AXES_FAILURE_LIMIT
    users = recent.exclude(username=None).values("username").annotate(failures=Sum("failures_since_start"))
    addresses = recent.exclude(ip_address=None).values("ip_address").annotate(failures=Sum("failures_since_start"))
    return ([row for row in users if row["failures"] >= limit], [row for row in addresses if row["failures"] >= limit])


def staff_page(site, request):
    """For leads: everyone's second factor and the sign-ins locked now, with reset and unlock buttons."""
    actor = _require_lead(request)
    if request.method == "POST":
        if (response := step_up_response(request, reverse("admin:second_factor_staff"))) is not None:
            return response
        what = request.POST.get("what")
        if what in {"remove", "remove_device"}:
            user = get_user_model().objects.filter(pk=request.POST.get("user")).first()
            if user is None:
                messages.error(request, "No such staff member.")
            else:
                removed = second_factor_remove(actor=actor, user=user, request=request,
                                               device_id=request.POST.get("device") if what == "remove_device"
                                               else None)
                again = "" if has_second_factor(user) else "; they enrol again"
                messages.success(request, f"{len(removed)} device(s) of {user.get_username()} removed{again}.")
        elif what in {"unlock_user", "unlock_address"}:
            value = request.POST.get("value", "")
            unlock_user(actor=actor, request=request, **({"username": value} if what == "unlock_user" else
                                                         {"address": value}))
            messages.success(request, f"{value} unlocked.")
        return redirect("admin:second_factor_staff")
    users, addresses = locked_out()
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")
    rows = [{"user": user, "devices": device_rows(user)} for user in staff]
    return TemplateResponse(request, "admin/second_factor/staff.html", _context(
        site, request, title="Staff sign-in", rows=rows, locked_users=users, locked_addresses=addresses,
        cooloff=settings.AXES_COOLOFF_TIME, limit=settings.AXES_FAILURE_LIMIT))


def unlock_user(*, actor: Actor, request=None, username: str | None = None, address: str | None = None) -> int:
    """Clear a lockout (axes' own ``reset``) and put it on record."""
    cleared = axes_reset(username=username) if username else axes_reset(ip=address)
    user = get_user_model().objects.filter(username=username).first() if username else None
    signin_record(verb="signin.unlocked", user=user, username=username or "", request=request, actor=actor,
                  after={"username": username, "locked_address": address, "attempts_cleared": cleared})
    return cleared

