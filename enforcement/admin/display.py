"""How the console shows things in its lists and pages: severity and status badges, review-deadline
countdowns, links to a case or an account, and emails rendered for a page."""

from collections.abc import Callable
from datetime import datetime

from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.urls import reverse
from django.utils.html import format_html

from enforcement.models import Severity


def _span(delta_seconds: float) -> str:
    minutes = int(abs(delta_seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def sla_state(due: datetime | None, *, now: datetime, closed: bool = False) -> tuple[str, str]:
    """(text, tone) for a review deadline: "overdue 1h 05m" / "due in 3h 20m" / "reviewed"."""
    if closed:
        return "-", "muted"
    if due is None:
        return "reviewed", "muted"  # staff acted on the case: its deadline was met
    seconds = (due - now).total_seconds()
    if seconds < 0:
        return f"overdue {_span(seconds)}", "overdue"
    return f"due in {_span(seconds)}", "soon" if seconds < 3600 else "ok"


def sla_html(due: datetime | None, *, now: datetime, closed: bool = False):
    text, tone = sla_state(due, now=now, closed=closed)
    if tone == "muted":
        return format_html('<span class="sla sla-muted">{}</span>', text)
    return format_html(
        '<time class="sla sla-{}" datetime="{}" data-due="{}" title="{}">{}</time>',
        tone, due.isoformat(), due.isoformat(), f"{due:%Y-%m-%d %H:%M} UTC", text,
    )


def severity_badge(severity: str):
    return format_html('<span class="sev sev-{}">{}</span>', severity, Severity(severity).label)


def status_badge(status: str, label: str):
    return format_html('<span class="state state-{}">{}</span>', status, label)


def case_url(case_id: int) -> str:
    return reverse("admin:enforcement_case_change", args=[case_id])


def case_link(case_id: int | None):
    if not case_id:
        return "-"
    return format_html('<a href="{}">#{}</a>', case_url(case_id), case_id)


def account_link(account):
    if account is None:
        return "-"
    return format_html(
        '<a href="{}" title="{}">{}</a>',
        reverse("admin:accounts_account_change", args=[account.pk]), account.name, account.public_id,
    )


def shown_notice(render: Callable[[], dict]) -> dict:
    """An email rendered for a page (``render`` returns its ``subject``, ``text`` and ``html``): those with
    ``ok``, or ``ok: False`` and the ``problem``. A missing or broken template is shown where the email would be,
    never as a server error of the page around it."""
    try:
        notice = render()
    except TemplateDoesNotExist as exc:
        return {"ok": False, "problem": f"Missing template: {exc.args[0] if exc.args else exc}"}
    except TemplateSyntaxError as exc:
        return {"ok": False, "problem": f"Template error: {exc}"}
    except Exception as exc:  # the page must show what is wrong, whatever it is
        return {"ok": False, "problem": f"Could not render: {type(exc).__name__}: {exc}"}
    return {**notice, "ok": True}
