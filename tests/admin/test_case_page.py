"""The case page: one timeline, the ladder's advice, buttons by role, and errors as messages."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from enforcement import notifications, services
from enforcement.models import ActionStatus, Appeal, AuditEvent, Case, Comment, EnforcementAction, Violation
from tests.admin.conftest import messages_of, report
from tests.factories import missing_pk


def page(case_id: int) -> str:
    return f"/admin/enforcement/case/{case_id}/change/"


def transition(action_id: int, verb: str) -> str:
    return f"/admin/enforcement/enforcementaction/{action_id}/{verb}/"


def test_the_timeline_shows_everything_in_time_order_with_redacted_evidence(
    agent_client, high_case, as_agent, as_lead
):
    action = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="throttle", reason="slow them down")
    services.action_apply(action_id=action.pk)
    services.case_comment(actor=as_agent, case_id=high_case.pk, body="Customer says it was a test harness.")
    services.appeal_submit(actor=as_agent, action_id=action.pk, message="Please lift it, we fixed the form.")
    response = agent_client.get(page(high_case.pk))
    assert response.status_code == 200
    timeline = response.context["timeline"]
    kinds = {row["kind"] for row in timeline}
    assert kinds == {"violation", "action", "notification", "comment", "appeal", "audit"}
    times = [row["entry"].at for row in timeline]
    assert times == sorted(times, reverse=True)  # newest first
    html = response.content.decode()
    assert "4111 1111 1111 1111" not in html and "hunter2" not in html
    assert "[CARD REDACTED ...1111]" in html and "[REDACTED]" in html
    assert "Customer says it was a test harness." in html
    assert "customer_throttle" in html  # the email sent to the customer
    assert "action.applied" in html  # the audit trail of the action's state changes


def test_the_ladder_recommendation_with_its_reason_and_one_click_propose(
    agent_client, high_case, django_capture_on_commit_callbacks
):
    response = agent_client.get(page(high_case.pk))
    recommendation = response.context["recommendation"]
    assert recommendation.kind == "throttle"
    html = response.content.decode()
    assert escape(recommendation.reason) in html and 'id="propose-recommended"' in html
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            f"/admin/enforcement/case/{high_case.pk}/propose/",
            {"kind": "throttle", "reason": recommendation.reason, "next": page(high_case.pk)}, follow=True,
        )
    assert response.redirect_chain[-1][0] == page(high_case.pk)
    action = EnforcementAction.objects.get(case=high_case)
    assert (action.kind, action.status, action.reason) == ("throttle", "applied", recommendation.reason)
    assert {key.status for key in high_case.test_account.keys.all()} == {"throttled"}
    assert any("Throttle" in m for m in messages_of(response))
    # Done already: the one-click button gives way to a pointer at the action.
    assert 'id="propose-recommended"' not in response.content.decode()
    assert "Already in place" in response.content.decode()


def test_propose_without_a_kind_uses_the_ladder(agent_client, high_case, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(f"/admin/enforcement/case/{high_case.pk}/propose/", {"kind": "", "reason": ""})
    assert EnforcementAction.objects.get(case=high_case).kind == "throttle"


def test_choosing_another_kind_with_keys_and_limits(agent_client, high_case):
    key = high_case.test_account.test_keys[0]
    response = agent_client.post(
        f"/admin/enforcement/case/{high_case.pk}/propose/",
        {"kind": "throttle", "reason": "one key only", "keys": [key.prefix], "rate_limit_per_minute": "30",
         "ip_rate_limit_per_minute": "5"}, follow=True,
    )
    action = EnforcementAction.objects.get(case=high_case)
    assert [k.prefix for k in action.keys.all()] == [key.prefix]
    assert (action.rate_limit_per_minute, action.ip_rate_limit_per_minute) == (30, 5)
    assert response.status_code == 200


def test_an_account_with_many_keys_lists_the_first_and_takes_typed_prefixes(agent_client, make_account,
                                                                            as_detector):
    """The case page names 25 keys, not thousands: the rest are counted and a link away, and a proposal on
    some of them takes their prefixes typed into one field (spaces or commas)."""
    from enforcement.admin.cases import CASE_PAGE_KEYS

    account = make_account(n_keys=CASE_PAGE_KEYS + 5)
    case = report(as_detector, account, rule="special-category-data", severity="high").violation.case
    response = agent_client.get(page(case.pk))
    html = response.content.decode()
    listed = sorted(k.prefix for k in account.test_keys)[:CASE_PAGE_KEYS]
    assert [k.prefix for k in response.context["case_keys"]] == listed
    assert (response.context["key_count"], response.context["more_keys"]) == (CASE_PAGE_KEYS + 5, 5)
    assert 'id="more-keys"' in html and "and 5 more" in html and 'id="propose-keys"' in html
    unlisted = sorted(k.prefix for k in account.test_keys)[-2:]
    agent_client.post(f"/admin/enforcement/case/{case.pk}/propose/",
                      {"kind": "throttle", "reason": "two keys", "keys": f"{unlisted[0]}, {unlisted[1]}"})
    action = EnforcementAction.objects.get(case=case)
    assert sorted(k.prefix for k in action.keys.all()) == unlisted
    # A prefix of another account's key is refused as the service refuses it, and nothing is proposed.
    other = make_account(n_keys=1).test_keys[0]
    response = agent_client.post(f"/admin/enforcement/case/{case.pk}/propose/",
                                 {"kind": "warning", "reason": "x", "keys": other.prefix}, follow=True)
    assert EnforcementAction.objects.filter(case=case).count() == 1 and messages_of(response)


def test_service_errors_become_messages_not_tracebacks(agent_client, high_case, as_lead):
    response = agent_client.post(
        f"/admin/enforcement/case/{high_case.pk}/propose/",
        {"kind": "warning", "reason": "x", "rate_limit_per_minute": "5"}, follow=True,
    )
    assert response.status_code == 200
    assert any("Only a throttle sets rate limits" in m for m in messages_of(response))
    assert not EnforcementAction.objects.exists()

    # An invalid transition: reverting an action that is not applied.
    suspend = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="suspend", reason="r")
    from tests.admin.conftest import login

    response = login(as_lead.user).post(transition(suspend.pk, "revert"), {"reason": "no"}, follow=True)
    assert response.status_code == 200
    assert any("cannot be reverted" in m for m in messages_of(response))
    suspend.refresh_from_db()
    assert suspend.status == ActionStatus.SCHEDULED


def test_agent_sees_no_approve_button_and_cannot_reach_the_url(agent_client, lead_client, high_case,
                                                               django_capture_on_commit_callbacks):
    agent_client.post(f"/admin/enforcement/case/{high_case.pk}/propose/", {"kind": "suspend", "reason": "abuse"})
    suspend = EnforcementAction.objects.get(case=high_case)
    assert suspend.status == ActionStatus.AWAITING_APPROVAL

    html = agent_client.get(page(high_case.pk)).content.decode()
    assert 'data-verb="approve"' not in html
    response = agent_client.post(transition(suspend.pk, "approve"))
    assert response.status_code == 403
    suspend.refresh_from_db()
    assert suspend.status == ActionStatus.AWAITING_APPROVAL
    assert not AuditEvent.objects.filter(verb="action.approved").exists()
    assert agent_client.get(transition(suspend.pk, "approve")).status_code == 405  # a button is never a GET

    html = lead_client.get(page(high_case.pk)).content.decode()
    assert 'data-verb="approve"' in html
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(transition(suspend.pk, "approve"), {"next": page(high_case.pk)}, follow=True)
    suspend.refresh_from_db()
    assert suspend.status == ActionStatus.APPLIED
    assert suspend.approved_by_label == "lead"
    assert {key.status for key in high_case.test_account.keys.all()} == {"suspended"}
    assert any("approved" in m for m in messages_of(response))


def test_termination_needs_a_second_lead(lead_client, second_lead_client, high_case, as_lead):
    terminate = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="terminate", reason="repeat abuse")
    html = lead_client.get(page(high_case.pk)).content.decode()
    assert 'data-verb="approve"' not in html and "another lead must approve it" in html
    response = lead_client.post(transition(terminate.pk, "approve"), follow=True)
    assert any("another lead must approve it" in m for m in messages_of(response))
    terminate.refresh_from_db()
    assert terminate.status == ActionStatus.AWAITING_APPROVAL
    assert 'data-verb="approve"' in second_lead_client.get(page(high_case.pk)).content.decode()


def test_cancel_revert_retry_and_confirm(lead_client, agent_client, high_case, as_agent, as_lead, make_account,
                                         as_trusted_detector, django_capture_on_commit_callbacks):
    warning = services.action_propose(actor=as_agent, case_id=high_case.pk, kind="warning", reason="first notice")
    agent_client.post(transition(warning.pk, "cancel"), {"reason": "sent by mistake"})
    warning.refresh_from_db()
    assert warning.status == ActionStatus.CANCELLED

    throttle = services.action_propose(actor=as_agent, case_id=high_case.pk, kind="throttle", reason="slow")
    services.action_record_failure(action_id=throttle.pk, error="ConnectionError: edge down", final=True)
    html = agent_client.get(page(high_case.pk)).content.decode()
    assert 'data-verb="retry"' in html and "edge down" in html
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(transition(throttle.pk, "retry"))
    throttle.refresh_from_db()
    assert throttle.status == ActionStatus.APPLIED
    agent_client.post(transition(throttle.pk, "revert"), {"reason": "customer fixed the form"})
    throttle.refresh_from_db()
    assert throttle.status == ActionStatus.REVERTED
    assert {key.status for key in high_case.test_account.keys.all()} == {"active"}

    # Act first: a trusted detector's critical report suspends at once; a lead confirms it.
    result = report(as_trusted_detector, make_account(), rule="security-abuse", severity="critical")
    act_first = result.act_first_action
    services.action_apply(action_id=act_first.pk)
    assert 'data-verb="confirm"' not in agent_client.get(page(result.violation.case_id)).content.decode()
    assert agent_client.post(transition(act_first.pk, "confirm")).status_code == 403
    assert 'data-verb="confirm"' in lead_client.get(page(result.violation.case_id)).content.decode()
    lead_client.post(transition(act_first.pk, "confirm"), {"reason": "probing confirmed in logs"})
    act_first.refresh_from_db()
    assert act_first.reviewed_at is not None
    assert not Case.objects.get(pk=result.violation.case_id).needs_lead_review


def test_agent_may_not_revert_a_suspension(agent_client, high_case, as_lead):
    suspend = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="suspend", reason="r")
    services.action_apply(action_id=suspend.pk)
    assert 'data-verb="revert"' not in agent_client.get(page(high_case.pk)).content.decode()
    assert agent_client.post(transition(suspend.pk, "revert"), {"reason": "x"}).status_code == 403
    suspend.refresh_from_db()
    assert suspend.status == ActionStatus.APPLIED


def test_appeal_recorded_by_an_agent_and_decided_by_a_lead(agent_client, lead_client, second_lead_client, high_case,
                                                            as_lead):
    throttle = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="throttle", reason="r")
    services.action_apply(action_id=throttle.pk)
    agent_client.post(transition(throttle.pk, "appeal"), {"message": "We removed the field."})
    appeal = Appeal.objects.get(action=throttle)
    html = agent_client.get(page(high_case.pk)).content.decode()
    assert "We removed the field." in html and "appeal-decide" not in html
    assert agent_client.post(f"/admin/enforcement/appeal/{appeal.pk}/decide/",
                             {"outcome": "overturned"}).status_code == 403
    # The lead who requested the throttle is not independent of it: no decide form, a reason instead.
    requester_view = lead_client.get(page(high_case.pk)).content.decode()
    assert "appeal-decide" not in requester_view and "took no part" in requester_view
    assert "appeal-decide" in second_lead_client.get(page(high_case.pk)).content.decode()
    response = second_lead_client.post(f"/admin/enforcement/appeal/{appeal.pk}/decide/",
                                       {"outcome": "overturned", "note": "Fixed quickly."}, follow=True)
    appeal.refresh_from_db()
    throttle.refresh_from_db()
    assert appeal.status == "overturned" and throttle.status == "reverted" and throttle.overturned
    assert any("overturned" in m for m in messages_of(response))


def test_comment_assign_dismiss_and_resolve(agent_client, agent, high_case):
    agent_client.post(f"/admin/enforcement/case/{high_case.pk}/comment/", {"body": "Looking into it."})
    assert Comment.objects.get(case=high_case).body == "Looking into it."
    response = agent_client.post(f"/admin/enforcement/case/{high_case.pk}/comment/", {"body": "  "}, follow=True)
    assert any("needs some text" in m for m in messages_of(response))

    agent_client.post(f"/admin/enforcement/case/{high_case.pk}/assign/", {"assignee": "me"})
    assert Case.objects.get(pk=high_case.pk).assignee == agent
    agent_client.post(f"/admin/enforcement/case/{high_case.pk}/assign/", {"assignee": ""})
    assert Case.objects.get(pk=high_case.pk).assignee is None

    violation = Violation.objects.get(case=high_case)
    agent_client.post(f"/admin/enforcement/violation/{violation.pk}/dismiss/", {"reason": "test traffic"})
    violation.refresh_from_db()
    assert violation.status == "dismissed"

    agent_client.post(f"/admin/enforcement/case/{high_case.pk}/resolve/", {"resolution": "Test traffic only."})
    case = Case.objects.get(pk=high_case.pk)
    assert case.status == "closed" and case.resolution == "Test traffic only."
    html = agent_client.get(page(high_case.pk)).content.decode()
    assert "This case is closed." in html and 'id="comment-form"' not in html


def test_auditor_reads_only(auditor_client, high_case, as_lead):
    suspend = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="suspend", reason="r")
    response = auditor_client.get(page(high_case.pk))
    assert response.status_code == 200
    html = response.content.decode()
    for marker in ("data-verb=", 'id="comment-form"', 'id="propose-recommended"', 'id="assign"', 'id="resolve"',
                   "Dismiss this violation"):
        assert marker not in html, marker
    for url, data in [
        (f"/admin/enforcement/case/{high_case.pk}/comment/", {"body": "hi"}),
        (f"/admin/enforcement/case/{high_case.pk}/propose/", {"kind": "warning", "reason": "x"}),
        (f"/admin/enforcement/case/{high_case.pk}/resolve/", {}),
        (transition(suspend.pk, "cancel"), {}),
    ]:
        assert auditor_client.post(url, data).status_code == 403, url
    assert not Comment.objects.exists()
    suspend.refresh_from_db()
    assert suspend.status == ActionStatus.SCHEDULED


def test_outsider_sees_nothing(outsider_client, high_case):
    assert outsider_client.get(page(high_case.pk)).status_code == 403
    assert outsider_client.post(f"/admin/enforcement/case/{high_case.pk}/comment/", {"body": "x"}).status_code == 403


def test_unknown_case_and_bad_verb(agent_client):
    assert agent_client.get(page(999999)).status_code == 302  # the admin's "does not exist" redirect
    # Not a button: the admin's own URL handling answers (a redirect to the "change" URL, then not found).
    assert agent_client.post(transition(1, "explode")).status_code in (302, 404)


def test_a_failed_email_on_the_timeline_can_be_resent(agent_client, high_case, as_lead,
                                                      django_capture_on_commit_callbacks):
    throttle = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="throttle", reason="r")
    services.action_apply(action_id=throttle.pk)
    email = high_case.notifications.get(template="customer_throttle")
    # As if it had failed for EMAIL_RETRY_HOURS: the next failure is the last.
    type(email).objects.filter(pk=email.pk).update(status="pending", retry_until=timezone.now())
    notifications.notification_record_failure(notification_id=email.pk, error="SMTPServerDisconnected: gone")
    email.refresh_from_db()
    assert email.status == "failed"
    html = agent_client.get(page(high_case.pk)).content.decode()
    assert "SMTPServerDisconnected" in html
    assert f"/admin/enforcement/notification/{email.pk}/resend/" in html
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(f"/admin/enforcement/notification/{email.pk}/resend/",
                                     {"next": page(high_case.pk)}, follow=True)
    assert any("back in the outbox" in m for m in messages_of(response))
    assert AuditEvent.objects.filter(verb="notification.resent", target_id=str(email.pk)).exists()
    email.refresh_from_db()
    assert email.status in ("sent", "pending", "failed") and email.attempts >= 1


# --------------------------------------------------------------------------- query counts


def _grow_case(case, as_detector, as_lead, as_agent, n: int) -> None:
    """n more violations, comments and actions (each with its emails and audit events)."""
    for i in range(n):
        report(as_detector, case.account, rule="secrets-in-events", severity="medium",
               key=case.test_account.test_keys[i % 2], evidence={"sample": f"row {i}", "password": "x"})
        services.case_comment(actor=as_agent, case_id=case.pk, body=f"note {i}")
    for kind in ("warning", "throttle"):
        action = services.action_propose(actor=as_lead, case_id=case.pk, kind=kind, reason="r",
                                         key_prefixes=[case.test_account.test_keys[0].prefix])
        services.action_apply(action_id=action.pk)
        services.action_revert(actor=as_lead, action_id=action.pk, reason="undo")


def _page_queries(client, case_id) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(page(case_id))
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("client_fixture", ["agent_client", "lead_client"])
def test_the_case_page_makes_a_constant_number_of_queries(
    request, client_fixture, high_case, as_detector, as_lead, as_agent, django_assert_max_num_queries
):
    client = request.getfixturevalue(client_fixture)
    _grow_case(high_case, as_detector, as_lead, as_agent, 4)
    small = _page_queries(client, high_case.pk)
    timeline_small = len(client.get(page(high_case.pk)).context["timeline"])
    _grow_case(high_case, as_detector, as_lead, as_agent, 45)
    with django_assert_max_num_queries(small):
        response = client.get(page(high_case.pk))
    # The whole story is there, one page of it rendered (newest first), the rest a link away.
    assert response.context["timeline_page"]["total"] > 5 * timeline_small
    assert len(response.context["timeline"]) == 50 and response.context["timeline_page"]["older_url"]
    assert Violation.objects.filter(case=high_case).count() == 50
    assert small <= 42  # constant: the page, one page of its timeline, the previous and next case of its view


def test_buttons_need_the_csrf_token(agent, high_case):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    response = client.post(f"/admin/enforcement/case/{high_case.pk}/comment/", {"body": "forged"})
    assert response.status_code == 403
    assert not Comment.objects.exists()


def test_a_missing_case_is_a_message_and_next_stays_on_this_site(agent_client, high_case):
    missing = missing_pk(Case)
    response = agent_client.post(f"/admin/enforcement/case/{missing}/comment/", {"body": "hello"}, follow=True)
    assert any(f"No case {missing}" in m for m in messages_of(response))
    response = agent_client.post(f"/admin/enforcement/case/{high_case.pk}/comment/",
                                 {"body": "hello", "next": "https://evil.example/phish"})
    assert response["Location"] == page(high_case.pk)
