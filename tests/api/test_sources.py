"""A source belongs to its reporter: another token can neither read what is stored under it (a replay of
someone else's (source, external_id)), nor claim ids in advance, nor use the GitHub endpoint's source."""

import pytest

from enforcement import services
from enforcement.actors import SYSTEM, Actor
from enforcement.errors import Forbidden
from enforcement.models import AuditEvent, Source, Violation
from tests.api.helpers import assert_error
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def body(account, external_id, source="ids", **extra):
    return {"account": account.public_id, "rule": "spam-fraud", "source": source, "external_id": external_id,
            "summary": "Click farm traffic from 40 sites.", **extra}


def test_a_replay_answers_only_the_owner_and_learns_nothing_otherwise(make_client, account):
    owner, stranger = make_client("violations:write"), make_client("violations:write")
    first = owner.post("/api/v1/violations/", body(account, "evt-1", evidence={"ip": "203.0.113.9"}),
                       format="json")
    assert first.status_code == 201
    assert owner.post("/api/v1/violations/", body(account, "evt-1"), format="json").status_code == 200
    stolen = stranger.post("/api/v1/violations/", body(account, "evt-1"), format="json")
    assert_error(stolen, 403, "source_not_yours")
    assert "evt-1" not in stolen.content.decode() and account.public_id not in stolen.content.decode()
    assert Violation.objects.count() == 1


def test_nobody_claims_another_detectors_ids_in_advance(make_client, account):
    owner, squatter = make_client("violations:write"), make_client("violations:write")
    owner.post("/api/v1/violations/", body(account, "evt-1"), format="json")
    assert_error(squatter.post("/api/v1/violations/", body(account, "evt-2"), format="json"), 403,
                 "source_not_yours")
    assert owner.post("/api/v1/violations/", body(account, "evt-2"), format="json").status_code == 201


def test_the_github_source_is_reserved_to_the_github_endpoint(make_client, account):
    token = make_client("violations:write")
    response = token.post("/api/v1/violations/", body(account, "0" * 64, source="github-secret-scanning"),
                          format="json")
    assert_error(response, 403, "source_not_yours")
    assert not Violation.objects.exists()


def test_a_batch_refuses_only_the_items_under_another_reporters_source(make_client, account):
    owner, other = make_client("violations:write"), make_client("violations:write")
    owner.post("/api/v1/violations/", body(account, "evt-1"), format="json")
    items = [body(account, "evt-9", source="other-ids"), body(account, "evt-1"), body(account, "evt-2")]
    results = other.post("/api/v1/violations/batch/", {"violations": items}, format="json").json()["results"]
    assert results[0]["created"] is True
    assert [results[1]["error"]["code"], results[2]["error"]["code"]] == ["source_not_yours"] * 2
    assert Violation.objects.filter(source="ids").count() == 1


def test_a_token_counts_as_its_creator_and_a_lead_can_hand_a_source_over(make_client, account, lead):
    old, new = make_client("violations:write"), make_client("violations:write")
    old.post("/api/v1/violations/", body(account, "evt-1"), format="json")
    source = Source.objects.get(name="ids")
    with pytest.raises(Forbidden, match="Only a lead"):
        services.source_reassign(actor=Actor.for_user(UserFactory(username="ag", role="tns_agent")),
                                 source_id=source.pk, owner_token_id=new.token.pk)
    services.source_reassign(actor=Actor.for_user(lead), source_id=source.pk, owner_token_id=new.token.pk)
    assert AuditEvent.objects.filter(verb="source.reassigned").count() == 1
    assert new.post("/api/v1/violations/", body(account, "evt-2"), format="json").status_code == 201
    assert_error(old.post("/api/v1/violations/", body(account, "evt-3"), format="json"), 403, "source_not_yours")
    services.violation_report(actor=SYSTEM, account=account, rule="spam-fraud", source="ids", external_id="sys-1",
                              summary="The console itself may report under any source.")


def test_a_person_may_report_under_the_source_of_a_token_they_created(lead, account):
    token, _ = services.service_token_create(actor=Actor.for_user(lead), name="leads-detector",
                                             scopes=["violations:write"])
    services.violation_report(actor=Actor.for_token(token), account=account, rule="spam-fraud", source="manual",
                              external_id="m-1", summary="Seen by the lead's script.")
    again = services.violation_report(actor=Actor.for_user(lead), account=account, rule="spam-fraud",
                                      source="manual", external_id="m-1", summary="The lead, in person.")
    assert not again.created
