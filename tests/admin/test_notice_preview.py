"""Staff see the customer's notice before they propose or approve: for the ladder's recommendation on the case page,
and for each action awaiting approval (on the case page and the approvals queue). A preview changes nothing."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from enforcement import notifications, services
from enforcement.models import AuditEvent, EnforcementAction, Notification
from tests.admin.conftest import login, messages_of, report

APPROVALS = "/admin/enforcement/enforcementaction/approvals/"


def page_of(case_id: int) -> str:
    return f"/admin/enforcement/case/{case_id}/change/"


def notice_url(action_id: int) -> str:
    return f"/admin/enforcement/enforcementaction/{action_id}/notice/"


def sent_notice(action) -> dict:
    """The customer's notice of an action as the outbox renders it for sending."""
    row = Notification.objects.get(action=action, audience="customer")
    subject, text, _ = notifications.render(row.template, row.context)
    return {"template": row.template, "subject": subject, "text": text}


def counts() -> tuple[int, int, int]:
    return EnforcementAction.objects.count(), Notification.objects.count(), AuditEvent.objects.count()


def _without_who_decided(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("- Decision:"))


# --------------------------------------------------------------------------- the ladder's recommendation


def test_the_case_page_previews_the_recommended_notice_and_changes_nothing(agent_client, high_case):
    before = counts()
    response = agent_client.get(page_of(high_case.pk))
    assert counts() == before
    notice = response.context["recommended_notice"]
    assert notice["ok"] and notice["template"] == "customer_throttle"
    html = response.content.decode()
    preview = html.split('id="notice-preview"')[1].split("</details>\n")[0]
    assert "Preview the customer's notice" in html
    assert "We have lowered the rate limits of all API keys of your account" in preview
    assert 'sandbox=""' in preview and "srcdoc=" in preview
    assert "4111 1111 1111 1111" not in html and "hunter2" not in html  # evidence is never in a notice


def _preview_then_propose(client, case, capture) -> tuple[dict, dict]:
    """The notice the case page previews for the ladder's advice, then the one sent after its one-click propose."""
    response = client.get(page_of(case.pk))
    recommendation = response.context["recommendation"]
    with capture(execute=True):
        client.post(f"/admin/enforcement/case/{case.pk}/propose/",
                    {"kind": recommendation.kind, "reason": recommendation.reason})
    return response.context["recommended_notice"], sent_notice(EnforcementAction.objects.get(case=case))


def test_the_recommended_notice_is_what_the_customer_then_receives(agent_client, high_case,
                                                                   django_capture_on_commit_callbacks):
    shown, sent = _preview_then_propose(agent_client, high_case, django_capture_on_commit_callbacks)
    assert (sent["template"], sent["subject"]) == (shown["template"], shown["subject"])
    assert _without_who_decided(sent["text"]) == _without_who_decided(shown["text"])


def test_the_recommended_notice_is_word_for_word_what_the_customer_then_receives(
    agent_client, high_case, django_capture_on_commit_callbacks
):
    shown, sent = _preview_then_propose(agent_client, high_case, django_capture_on_commit_callbacks)
    assert sent["text"] == shown["text"]


def _case_recommending(kind: str, *, make_account, as_detector, as_lead):
    """An open case on which the ladder recommends ``kind`` (terminate: a critical report after one strike)."""
    if kind == "terminate":
        account = make_account()
        earlier = report(as_detector, account, rule="special-category-data", severity="high").violation.case
        throttle = services.action_propose(actor=as_lead, case_id=earlier.pk, kind="throttle", reason="r")
        services.action_apply(action_id=throttle.pk)
        services.case_resolve(actor=as_lead, case_id=earlier.pk, resolution="throttled")
        return report(as_detector, account, rule="spam-fraud", severity="critical").violation.case
    rule, severity = {"warning": ("secrets-in-events", "medium"), "throttle": ("special-category-data", "high"),
                      "suspend": ("spam-fraud", "critical")}[kind]
    return report(as_detector, make_account(), rule=rule, severity=severity).violation.case


@pytest.mark.parametrize("kind", ["warning", "throttle", "suspend", "terminate"])
def test_the_preview_renders_for_every_kind(kind, lead_client, make_account, as_detector, as_lead):
    case = _case_recommending(kind, make_account=make_account, as_detector=as_detector, as_lead=as_lead)
    response = lead_client.get(page_of(case.pk))
    assert response.context["recommendation"].kind == kind
    notice = response.context["recommended_notice"]
    assert notice["ok"], notice.get("problem")
    assert notice["template"] == f"customer_{kind}" and notice["subject"] and notice["text"].strip()
    html = response.content.decode()
    assert f'data-template="customer_{kind}"' in html
    if kind == "warning":  # no key changes, but the customer is still told, with a deadline to fix it
        assert "nothing has changed on your account" in notice["text"] and "Please fix this by" in notice["text"]


def test_no_preview_where_nothing_would_be_proposed(lead_client, auditor_client, high_case, as_lead,
                                                    make_account, as_detector):
    assert auditor_client.get(page_of(high_case.pk)).context["recommended_notice"] is None  # may not propose
    research = report(as_detector, make_account(), rule="security-research", severity="low").violation.case
    response = lead_client.get(page_of(research.pk))
    assert response.context["recommended_notice"] is None and 'id="notice-preview"' not in response.content.decode()
    suspend = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="suspend", reason="r")
    response = lead_client.get(page_of(high_case.pk))
    assert response.context["already"].pk == suspend.pk and response.context["recommended_notice"] is None


def test_what_the_customer_wrote_is_shown_as_text_never_as_markup(agent_client, make_account, as_detector):
    attack = "<img src=x onerror=alert(1)>"
    account = make_account(name="<b>Mallory</b> & Co")
    case = report(as_detector, account, rule="special-category-data", severity="high", summary=attack).violation.case
    html = agent_client.get(page_of(case.pk)).content.decode()
    preview = html.split('id="notice-preview"')[1].split("</details>\n")[0]
    assert attack not in html and "<b>Mallory</b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in preview  # in the plain text
    assert "&amp;lt;img src=x onerror=alert(1)&amp;gt;" in preview  # in the HTML email, escaped again for srcdoc


# --------------------------------------------------------------------------- actions awaiting approval


def test_an_action_awaiting_approval_previews_the_notice_that_approving_sends(
    agent_client, lead_client, high_case, django_capture_on_commit_callbacks
):
    agent_client.post(f"/admin/enforcement/case/{high_case.pk}/propose/", {"kind": "suspend", "reason": "abuse"})
    suspend = EnforcementAction.objects.get(case=high_case)
    for client in (agent_client, lead_client):
        card = client.get(page_of(high_case.pk)).content.decode().split(f'id="action-{suspend.pk}"')[1]
        assert f'data-notice-url="{notice_url(suspend.pk)}"' in card.split('class="action-card"')[0]

    before = counts()
    response = lead_client.get(notice_url(suspend.pk))
    assert response.status_code == 200 and counts() == before
    shown = response.context["notice"]
    assert shown["ok"] and shown["template"] == "customer_suspend"
    assert "We have suspended all API keys" in response.content.decode()
    assert high_case.account.email in response.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        lead_client.post(f"/admin/enforcement/enforcementaction/{suspend.pk}/approve/")
    sent = sent_notice(suspend)
    assert (sent["template"], sent["subject"], sent["text"]) == (shown["template"], shown["subject"], shown["text"])

    # Decided: there is no notice still to come; the sent one is on the timeline.
    response = lead_client.get(notice_url(suspend.pk))
    assert response.context["notice"]["ok"] is False and escape("on the case's timeline") in response.content.decode()


def test_the_approvals_queue_offers_the_notice_of_every_row(lead_client, make_account, as_detector, as_agent):
    actions = []
    for _ in range(2):
        case = report(as_detector, make_account(), rule="special-category-data", severity="high").violation.case
        actions.append(services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="r"))
    html = lead_client.get(APPROVALS).content.decode()
    for action in actions:
        row = html.split(f'id="approval-{action.pk}"')[1].split("</tr>")[0]
        assert f'data-notice-url="{notice_url(action.pk)}"' in row and "Preview the customer's notice" in row
    assert "details[data-notice-url]" in html  # the script that loads a notice when its disclosure opens


def test_the_notice_page_is_for_staff_only(outsider_client, lead_client, high_case, as_agent):
    suspend = services.action_propose(actor=as_agent, case_id=high_case.pk, kind="suspend", reason="r")
    assert outsider_client.get(notice_url(suspend.pk)).status_code == 403
    response = lead_client.get(notice_url(suspend.pk + 1000), follow=True)
    assert any(f"No action {suspend.pk + 1000}" in m for m in messages_of(response))


def _page_queries(client, case_id) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(page_of(case_id)).status_code == 200
    return len(queries)


def test_actions_awaiting_approval_add_no_queries_to_the_case_page(make_account, as_detector, as_agent, lead):
    account = make_account(n_keys=4)
    case = report(as_detector, account, rule="special-category-data", severity="high").violation.case
    prefixes = [key.prefix for key in account.test_keys]
    services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="r", key_prefixes=prefixes[:1])
    client = login(lead)
    one = _page_queries(client, case.pk)
    for prefix in prefixes[1:]:
        services.action_propose(actor=as_agent, case_id=case.pk, kind="suspend", reason="r", key_prefixes=[prefix])
    assert EnforcementAction.objects.filter(case=case, status="awaiting_approval").count() == 4
    assert _page_queries(client, case.pk) == one
