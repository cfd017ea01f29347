"""Email notifications: customers are told what happened, why and what to do; staff when something needs them.

- ``outbox``: notices written in the transaction of the state change that causes them, sent once by a task.
- ``facts``: what a notice says, taken from the case and the action, cleaned of what must never be emailed.
- ``rendering``: subject, text and HTML from the templates under ``templates/emails/``.
- ``wording``: the policy's voice (labels, remediation and urgency per rule).
- ``samples``: made-up facts for every template (the admin's preview, the template tests).
"""

from enforcement.notifications.facts import action_context, case_context
from enforcement.notifications.outbox import (
    CLAIM_LEASE,
    STUCK_AFTER,
    TEMPLATES,
    SendDeferred,
    notification_record_failure,
    notification_resend,
    notification_send,
    notify_account,
    notify_customer,
    notify_recipients,
    notify_staff,
    retry_delay,
    staff_recipients,
    stuck_customer_notices,
    stuck_ids,
)
from enforcement.notifications.rendering import render
from enforcement.notifications.samples import sample_context
from enforcement.notifications.wording import REMEDIATION, URGENCY

__all__ = [
    "CLAIM_LEASE", "REMEDIATION", "STUCK_AFTER", "TEMPLATES", "URGENCY", "SendDeferred", "action_context",
    "case_context", "retry_delay", "stuck_customer_notices",
    "notification_record_failure", "notification_resend", "notification_send", "notify_account", "notify_customer",
    "notify_recipients", "notify_staff", "render", "sample_context", "staff_recipients", "stuck_ids",
]
