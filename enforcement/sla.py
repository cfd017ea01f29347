"""Review deadlines per severity. Pure."""

from datetime import datetime, timedelta

DEFAULT_SLA_HOURS = {"critical": 1, "high": 4, "medium": 24, "low": 72}


def review_deadline(severity: str, since: datetime, *, sla_hours: dict | None = None) -> datetime:
    hours = (sla_hours or DEFAULT_SLA_HOURS)[severity]
    return since + timedelta(hours=hours)


def tightened_deadline(
    current: datetime | None, severity: str, since: datetime, *, sla_hours: dict | None = None
) -> datetime:
    """A new, more severe violation can only bring the review deadline closer."""
    deadline = review_deadline(severity, since, sla_hours=sla_hours)
    return deadline if current is None else min(current, deadline)
