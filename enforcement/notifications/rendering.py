"""Rendering a stored notice: subject, plain text and HTML from its templates and its cleaned facts."""

import copy
import re
from datetime import UTC, datetime
from email.utils import parseaddr

from django.conf import settings
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.utils import timezone

from enforcement.notifications.facts import clean
from enforcement.notifications.wording import (
    ACTION_LABELS,
    DEFAULT_REMEDIATION,
    DEFAULT_URGENCY,
    KEY_KIND_LABELS,
    REMEDIATION,
    URGENCY,
)


def _parse_dates(value, *, key: str = ""):
    """ISO strings under ``*_at`` / ``*_deadline`` keys become aware datetimes, for the ``date`` filter."""
    if isinstance(value, dict):
        return {k: _parse_dates(v, key=k) for k, v in value.items()}
    if isinstance(value, list):
        return [_parse_dates(item) for item in value]
    if isinstance(value, str) and (key.endswith("_at") or key.endswith("_deadline")):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
    return value


def _with_guidance(violation: dict) -> dict:
    rule = violation.get("rule")
    return {**violation, "what_to_do": REMEDIATION.get(rule, DEFAULT_REMEDIATION),
            "why_urgent": URGENCY.get(rule, DEFAULT_URGENCY)}


def _render_context(context: dict) -> dict:
    ctx = _parse_dates(clean(copy.deepcopy(context)))
    violations = [_with_guidance(v) for v in ctx.get("violations") or [] if isinstance(v, dict)]
    violation = _with_guidance(ctx["violation"]) if isinstance(ctx.get("violation"), dict) else None
    ctx["violations"] = violations
    ctx["violation"] = violation
    # The one violation the email leads with: the reported one, or the latest open one.
    ctx["primary"] = violation or (violations[0] if violations else None)
    ctx["guidance"] = list(dict.fromkeys(v["what_to_do"] for v in violations or [violation] if v)) or [
        DEFAULT_REMEDIATION
    ]
    keys = ctx.get("keys") or []
    ctx["keys_phrase"] = (
        f"your API key{pluralize(keys)} {', '.join(keys)}" if keys else "all API keys of your account"
    )
    kind = ctx.get("action_kind") or ""
    ctx["action_label"] = ACTION_LABELS.get(kind, kind)
    ctx["action_status_label"] = (ctx.get("action_status") or "").replace("_", " ")
    key_prefix = ctx.get("key_prefix") or ""
    ctx["key_kind_label"] = next((label for p, label in KEY_KIND_LABELS.items() if key_prefix.startswith(p)), "key")
    leak_url = ctx.get("leak_url") or ""
    ctx["leak_link"] = leak_url if leak_url.startswith(("https://", "http://")) else ""
    ctx["support_email"] = settings.EMAIL_REPLY_TO or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    ctx["appeal_window_days"] = settings.ENFORCEMENT["APPEAL_WINDOW_DAYS"]
    base_url = getattr(settings, "CONSOLE_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    ctx["console_base_url"] = base_url
    ctx["case_url"] = f"{base_url}/admin/enforcement/case/{ctx['case_id']}/change/" if ctx.get("case_id") else ""
    ctx["source_url"] = (f"{base_url}/admin/enforcement/source/{ctx['source_id']}/change/"
                         if ctx.get("source_id") else "")
    ctx["precision_pct"] = _percent(ctx.get("precision"))
    ctx["threshold_pct"] = _percent(ctx.get("threshold"))
    return ctx


def _percent(value) -> str:
    """0.85 -> "85%", 0.8571 -> "85.7%"; "n/a" without a number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    return f"{round(value * 100, 1):g}%"


def _tidy_text(text: str) -> str:
    """Template tags leave blank lines behind: keep at most one between paragraphs."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def render(template: str, context: dict) -> tuple[str, str, str]:
    """Subject, plain text and HTML of one email."""
    ctx = _render_context(context)
    subject = render_to_string(f"emails/{template}.subject.txt", ctx)
    text = render_to_string(f"emails/{template}.txt", ctx)
    html = render_to_string(f"emails/{template}.html", {**ctx, "subject": " ".join(subject.split())})
    return " ".join(subject.split()), _tidy_text(text), html

