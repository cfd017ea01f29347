"""Decision integrity in the console: an approval on a stale page says who decided instead of "approved", the
requester of a termination gets a reason instead of a button (and a refusal on record if they press anyway), and
dismissing, closing and upholding each need their words for the record or the customer."""

from django.utils.html import escape

from enforcement import services
from enforcement.models import ActionStatus, Appeal, AuditEvent, Case, EnforcementAction, Violation
from tests.admin.conftest import messages_of

APPROVALS = "/admin/enforcement/enforcementaction/approvals/"


def page_of(case_id: int) -> str:
    return f"/admin/enforcement/case/{case_id}/change/"


def approve(action_id: int) -> str:
    return f"/admin/enforcement/enforcementaction/{action_id}/approve/"


def said(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def refusals(action, code: str) -> int:
    return AuditEvent.objects.filter(verb="action.approve.refused", target_id=str(action.pk),
                                     after__code=code).count()


def test_approving_on_a_stale_page_says_who_already_approved_it(
    agent_client, lead_client, second_lead_client, high_case, django_capture_on_commit_callbacks
):
    agent_client.post(f"/admin/enforcement/case/{high_case.pk}/propose/", {"kind": "suspend", "reason": "abuse"})
    suspend = EnforcementAction.objects.get(case=high_case)
    # Both leads have the page open with an Approve button; the second lead presses it first.
    for client in (lead_client, second_lead_client):
        assert 'data-verb="approve"' in client.get(page_of(high_case.pk)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        first = second_lead_client.post(approve(suspend.pk), {"next": page_of(high_case.pk)}, follow=True)
    assert [level for level, _ in said(first)] == ["success"] and f"Suspend #{suspend.pk} approved" in said(first)[0][1]

    stale = lead_client.post(approve(suspend.pk), {"next": page_of(high_case.pk)}, follow=True)
    assert stale.redirect_chain[-1][0] == page_of(high_case.pk)
    assert said(stale) == [("error", f"Suspend #{suspend.pk} was already approved by lead2.")]
    suspend.refresh_from_db()
    assert suspend.approved_by_label == "lead2" and suspend.status == ActionStatus.APPLIED
    assert refusals(suspend, "already_decided") == 1  # the refusal is on record

    # The lead who approved, pressing again (a double click, a retry), changes nothing and is told it is approved.
    again = second_lead_client.post(approve(suspend.pk), follow=True)
    assert [level for level, _ in said(again)] == ["success"]
    assert AuditEvent.objects.filter(verb="action.approved", target_id=str(suspend.pk)).count() == 1
    assert refusals(suspend, "already_decided") == 1


def test_the_lead_who_requested_a_termination_sees_a_reason_not_an_approve_button(
    lead_client, second_lead_client, high_case, as_lead, django_capture_on_commit_callbacks
):
    terminate = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="terminate", reason="repeat abuse")
    reason = "You requested this action (yourself or through a token you created); another lead must approve it."
    for url, marker in ((page_of(high_case.pk), f'id="action-{terminate.pk}"'),
                        (APPROVALS, f'id="approval-{terminate.pk}"')):
        html = lead_client.get(url).content.decode()
        own = html.split(marker)[1].split("</tr>")[0].split('class="action-card"')[0]
        assert 'data-verb="approve"' not in own and escape(reason) in own, url
        assert 'data-verb="approve"' in second_lead_client.get(url).content.decode(), url

    # Pressing it anyway (an old page, a crafted post): refused with the reason, and the refusal is on record.
    response = lead_client.post(approve(terminate.pk), {"next": page_of(high_case.pk)}, follow=True)
    assert said(response) == [("error", reason)]
    terminate.refresh_from_db()
    assert terminate.status == ActionStatus.AWAITING_APPROVAL and terminate.approved_by is None
    event = AuditEvent.objects.get(verb="action.approve.refused", target_id=str(terminate.pk))
    assert (event.actor_label, event.after, event.case_id) == ("lead", {"code": "not_independent"}, high_case.pk)

    with django_capture_on_commit_callbacks(execute=True):
        second_lead_client.post(approve(terminate.pk))
    terminate.refresh_from_db()
    assert terminate.status == ActionStatus.APPLIED and terminate.approved_by_label == "lead2"


def test_dismissing_a_violation_needs_a_reason(agent_client, high_case):
    violation = Violation.objects.get(case=high_case)
    html = agent_client.get(page_of(high_case.pk)).content.decode()
    form = html.split(f"/admin/enforcement/violation/{violation.pk}/dismiss/")[1].split("</form>")[0]
    assert 'name="reason"' in form and "required" in form
    response = agent_client.post(f"/admin/enforcement/violation/{violation.pk}/dismiss/",
                                 {"reason": "   ", "next": page_of(high_case.pk)}, follow=True)
    assert response.status_code == 200
    assert [level for level, _ in said(response)] == ["error"]
    assert any("Say why the violation is dismissed." in m for m in messages_of(response))
    violation.refresh_from_db()
    assert violation.status == "open" and not AuditEvent.objects.filter(verb="violation.dismissed").exists()


def test_closing_a_case_needs_a_resolution(agent_client, high_case):
    html = agent_client.get(page_of(high_case.pk)).content.decode()
    form = html.split(f"/admin/enforcement/case/{high_case.pk}/resolve/")[1].split("</form>")[0]
    assert 'name="resolution"' in form and "required" in form
    response = agent_client.post(f"/admin/enforcement/case/{high_case.pk}/resolve/", {"resolution": ""}, follow=True)
    assert [level for level, _ in said(response)] == ["error"]
    assert any("Say how the case was resolved." in m for m in messages_of(response))
    assert Case.objects.get(pk=high_case.pk).status != "closed"


def test_upholding_an_appeal_needs_a_note_for_the_customer(second_lead_client, high_case, as_lead, as_agent):
    throttle = services.action_propose(actor=as_lead, case_id=high_case.pk, kind="throttle", reason="r")
    services.action_apply(action_id=throttle.pk)
    appeal = services.appeal_submit(actor=as_agent, action_id=throttle.pk, message="It was a staging key.")
    for url in (page_of(high_case.pk), "/admin/enforcement/appeal/queue/"):
        html = second_lead_client.get(url).content.decode()
        form = html.split(f"/admin/enforcement/appeal/{appeal.pk}/decide/")[1].split("</form>")[0]
        assert 'name="note"' in form and "required" in form, url
        assert 'value="overturned" type="submit" formnovalidate' in form, url  # overturning needs no note

    response = second_lead_client.post(f"/admin/enforcement/appeal/{appeal.pk}/decide/",
                                       {"outcome": "upheld", "note": " ", "next": page_of(high_case.pk)},
                                       follow=True)
    assert [level for level, _ in said(response)] == ["error"]
    assert any("Upholding an appeal needs a note for the customer" in m for m in messages_of(response))
    assert Appeal.objects.get(pk=appeal.pk).status == "pending"

    second_lead_client.post(f"/admin/enforcement/appeal/{appeal.pk}/decide/", {"outcome": "overturned", "note": ""})
    assert Appeal.objects.get(pk=appeal.pk).status == "overturned"
