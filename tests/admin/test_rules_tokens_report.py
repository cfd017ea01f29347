"""Rules (lead-editable policy data), service tokens, and reporting a violation by hand."""

from enforcement.models import AuditEvent, Case, Rule, ServiceToken, Violation
from enforcement.tokens import service_token_authenticate


def _rule_form(rule: Rule, **changes) -> dict:
    data = {
        "title": rule.title, "clause": rule.clause, "description": rule.description,
        "default_severity": rule.default_severity, "ladder_overrides": "{}", "strike_window_days": "",
        "act_first": "on" if rule.act_first else "", "auto_action": "on" if rule.auto_action else "",
        "is_active": "on" if rule.is_active else "", "dsa_category": rule.dsa_category,
        "dsa_illegal": "on" if rule.dsa_illegal else "", "dsa_legal_ground": rule.dsa_legal_ground,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""} | {"ladder_overrides": data["ladder_overrides"]}


def test_a_lead_edits_a_rule_and_the_change_is_audited(lead_client, lead):
    rule = Rule.objects.get(code="secrets-in-events")
    url = f"/admin/enforcement/rule/{rule.pk}/change/"
    response = lead_client.post(url, _rule_form(rule, ladder_overrides='{"high": "suspend"}'))
    assert response.status_code == 302, response.content.decode()[:2000]
    rule.refresh_from_db()
    assert rule.ladder_overrides == {"high": "suspend"}
    event = AuditEvent.objects.get(verb="rule.updated", target_id=str(rule.pk))
    assert event.actor_label == "lead"
    assert event.before == {"ladder_overrides": {}}
    assert event.after == {"ladder_overrides": {"high": "suspend"}, "version": 2}


def test_a_lead_maps_a_rule_to_the_dsa_terms_and_illegal_content_needs_its_law(lead_client):
    rule = Rule.objects.get(code="secrets-in-events")
    assert rule.dsa_category == "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS"  # the data migration's
    url = f"/admin/enforcement/rule/{rule.pk}/change/"
    response = lead_client.post(url, _rule_form(rule, dsa_illegal="on"))
    assert response.status_code == 200 and "Name the law" in response.content.decode()
    response = lead_client.post(url, _rule_form(rule, dsa_illegal="on", dsa_legal_ground="GDPR Art. 32",
                                                dsa_category="STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE"))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.dsa_illegal, rule.dsa_legal_ground, rule.version) == (True, "GDPR Art. 32", 2)
    assert AuditEvent.objects.get(verb="rule.updated", target_id=str(rule.pk)).after["dsa_illegal"] is True


def test_bad_ladder_overrides_are_refused(lead_client):
    rule = Rule.objects.get(code="secrets-in-events")
    url = f"/admin/enforcement/rule/{rule.pk}/change/"
    response = lead_client.post(url, _rule_form(rule, ladder_overrides='{"huge": "obliterate"}'))
    assert response.status_code == 200
    html = response.content.decode()
    assert "is not a severity" in html and "is not a rung" in html
    response = lead_client.post(url, _rule_form(rule, ladder_overrides='["suspend"]'))
    assert "Must be a JSON object" in response.content.decode()
    rule.refresh_from_db()
    assert rule.ladder_overrides == {}
    assert not AuditEvent.objects.filter(verb="rule.updated").exists()


def test_agents_and_auditors_only_read_rules(agent_client, auditor_client):
    rule = Rule.objects.get(code="secrets-in-events")
    for client in (agent_client, auditor_client):
        response = client.post(f"/admin/enforcement/rule/{rule.pk}/change/",
                               _rule_form(rule, ladder_overrides='{"low": "terminate"}'))
        assert response.status_code == 403
        assert client.post(f"/admin/enforcement/rule/{rule.pk}/delete/", {"post": "yes"}).status_code == 403
    rule.refresh_from_db()
    assert rule.ladder_overrides == {}


def test_a_lead_creates_a_token_shown_once_and_revokes_it(lead_client, lead):
    response = lead_client.post("/admin/enforcement/servicetoken/add/", {
        "name": "abuse-detector", "scopes": ["violations:write", "cases:read"], "trusted": "on",
    })
    assert response.status_code == 200
    raw = response.context["raw"]
    assert raw.startswith("mmst_") and raw in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    token = ServiceToken.objects.get(name="abuse-detector")
    assert token.trusted and token.scopes == ["cases:read", "violations:write"] and token.created_by == lead
    assert raw not in str(ServiceToken.objects.values_list().get(pk=token.pk))  # only the hash is stored
    assert service_token_authenticate(raw) == token
    detail = lead_client.get(f"/admin/enforcement/servicetoken/{token.pk}/change/").content.decode()
    assert raw not in detail and 'id="revoke-token"' in detail

    lead_client.post(f"/admin/enforcement/servicetoken/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert service_token_authenticate(raw) is None
    assert AuditEvent.objects.filter(verb="service_token.revoked", actor_label="lead").exists()


def test_token_form_errors_and_duplicates(lead_client):
    response = lead_client.post("/admin/enforcement/servicetoken/add/", {"name": "", "scopes": []})
    assert response.status_code == 200 and "raw" not in response.context
    lead_client.post("/admin/enforcement/servicetoken/add/", {"name": "ci", "scopes": ["cases:read"]})
    response = lead_client.post("/admin/enforcement/servicetoken/add/", {"name": "ci", "scopes": ["cases:read"]})
    assert "A token with this name exists." in response.content.decode()
    assert ServiceToken.objects.filter(name="ci").count() == 1


def test_agents_cannot_create_or_revoke_tokens(agent_client, detector_token):
    assert agent_client.get("/admin/enforcement/servicetoken/add/").status_code == 403
    assert agent_client.post("/admin/enforcement/servicetoken/add/",
                             {"name": "x", "scopes": ["cases:read"]}).status_code == 403
    assert agent_client.post(f"/admin/enforcement/servicetoken/{detector_token.pk}/revoke/").status_code == 403
    detector_token.refresh_from_db()
    assert detector_token.revoked_at is None
    assert agent_client.get("/admin/enforcement/servicetoken/").status_code == 200


def test_report_a_violation_by_hand(agent_client, agent, make_account):
    account = make_account(n_keys=1)
    form = agent_client.get("/admin/enforcement/violation/report/", {"account": account.public_id})
    assert form.status_code == 200
    external_id = form.context["form"].initial["external_id"]
    data = {
        "account": account.public_id, "api_key": account.test_keys[0].prefix, "rule": "secrets-in-events",
        "severity": "", "summary": "Support ticket: card number in event payload",
        "evidence": '{"card": "4111111111111111", "ticket": 77}', "external_id": external_id,
    }
    response = agent_client.post("/admin/enforcement/violation/report/", data, follow=True)
    violation = Violation.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/enforcement/case/{violation.case_id}/change/"
    assert violation.source == "admin" and violation.reported_by == "agent" and violation.severity == "medium"
    assert violation.evidence == {"card": "[CARD REDACTED ...1111]", "ticket": 77}
    assert any("recommends: warning" in str(m) for m in response.context["messages"])
    # Pressing the button twice records one violation.
    agent_client.post("/admin/enforcement/violation/report/", data)
    assert Violation.objects.count() == 1 and Case.objects.count() == 1


def test_report_form_errors_are_shown_on_the_form(agent_client, make_account):
    make_account()
    response = agent_client.post("/admin/enforcement/violation/report/", {
        "account": "acct_nobody", "rule": "secrets-in-events", "summary": "x", "evidence": "{not json",
        "external_id": "e1",
    })
    assert response.status_code == 200
    assert "Not valid JSON" in response.content.decode()
    response = agent_client.post("/admin/enforcement/violation/report/", {
        "account": "acct_nobody", "rule": "secrets-in-events", "summary": "x", "external_id": "e1",
    })
    assert "No account" in response.content.decode()
    assert not Violation.objects.exists()


def test_auditors_cannot_report(auditor_client):
    assert auditor_client.get("/admin/enforcement/violation/report/").status_code == 403


def test_a_lead_hands_a_source_over_and_an_agent_cannot(lead_client, agent_client, as_detector, lead):
    from enforcement.models import ServiceToken, Source
    from tests.admin.conftest import report
    from tests.factories import AccountFactory

    report(as_detector, AccountFactory())
    source = Source.objects.get(owner_token=as_detector.token)
    new_token = ServiceToken.objects.create(name="new-detector", prefix="mmst_x", token_sha256="f" * 64)
    url = f"/admin/enforcement/source/{source.pk}/change/"
    assert agent_client.post(url, {"owner_token": new_token.pk}).status_code == 403
    assert lead_client.get("/admin/enforcement/source/").status_code == 200
    response = lead_client.post(url, {"owner_token": new_token.pk, "owner_user": ""})
    assert response.status_code == 302
    assert Source.objects.get(pk=source.pk).owner_token == new_token
    assert AuditEvent.objects.filter(verb="source.reassigned", actor_label=lead.username).exists()
