"""enforcement/services/report_writes.py: the one statement PostgreSQL writes new reports with (violations, their
audit events, the source tallies) leaves exactly the rows that the separate writes leave."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from enforcement import services
from enforcement.models import AuditEvent, Rule, SourceTally, Violation
from enforcement.services.report_writes import _insert_apart, _insert_in_one_statement, reports_insert
from tests.factories import AccountFactory, APIKeyFactory

pytestmark = pytest.mark.django_db


def new_reports(actor, account, case, key, *, tag: str) -> list[Violation]:
    rules = [Rule.objects.get(code="spam-fraud"), Rule.objects.get(code="covert-tracking")]
    return [
        Violation(account=account, api_key=key if n % 2 else None, rule=rules[n % 2], case=case,
                  severity=("low", "high")[n % 2], source=f"{tag}-{'ab'[n % 3 == 0]}", external_id=f"{tag}-{n}",
                  reported_by=actor.label, reporter_kind=actor.kind, observed_at=timezone.now(),
                  summary=f'"quoted" {n} é', evidence={"n": n, "list": [1, None]})
        for n in range(7)
    ]


def written(violations: list[Violation], tag: str) -> tuple[list[dict], list[dict]]:
    """The stored violations and their audit events, without what differs by construction (keys, times, tag)."""
    def untagged(text: str) -> str:
        return text.replace(tag, "")

    rows, audit = [], []
    for v in violations:
        stored = Violation.objects.get(pk=v.pk)
        values = {f.attname: getattr(stored, f.attname) for f in Violation._meta.concrete_fields}
        values.pop("id"), values.pop("reported_at"), values.pop("observed_at")
        rows.append({**values, "source": untagged(stored.source), "external_id": untagged(stored.external_id)})
        (event,) = AuditEvent.objects.filter(target_id=str(v.pk), verb="violation.reported")
        values = {f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields}
        values.pop("id"), values.pop("created_at"), values.pop("target_id")
        after = values["after"]
        values["after"] = {**after, "source": untagged(after["source"]), "external_id": untagged(after["external_id"])}
        audit.append(values)
    return rows, audit


def test_one_statement_writes_what_the_separate_writes_write(as_detector, account):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement write is PostgreSQL's")
    case = services.violation_report(actor=as_detector, account=account, rule="spam-fraud", source="seed",
                                     external_id="seed", summary="seed").violation.case
    key = APIKeyFactory(account=account)
    one, apart = new_reports(as_detector, account, case, key, tag="one"), new_reports(as_detector, account, case, key,
                                                                                      tag="two")
    before = timezone.now()
    with transaction.atomic():
        _insert_in_one_statement(as_detector, one, connection)
        _insert_apart(as_detector, apart)
    assert all(v.pk and not v._state.adding for v in one)
    assert [v.pk for v in one] == sorted(v.pk for v in one)  # inserted in the given order
    assert written(one, "one") == written(apart, "two")
    event = AuditEvent.objects.get(target_id=str(one[1].pk), verb="violation.reported")
    assert event.after == {"rule": "covert-tracking", "severity": "high", "source": "one-a", "external_id": "one-1",
                           "api_key": key.prefix}
    assert event.actor_token_id == as_detector.token.pk and event.case_id == case.pk
    assert before <= event.created_at <= timezone.now()
    # The audit events follow the violations' order.
    events = AuditEvent.objects.filter(target_id__in=[str(v.pk) for v in one]).order_by("pk")
    assert [int(e.target_id) for e in events] == [v.pk for v in one]
    tallies = {name: sum(SourceTally.objects.filter(source=name).values_list("reports", flat=True))
               for name in ("one-a", "one-b", "two-a", "two-b")}
    assert tallies == {"one-a": 4, "one-b": 3, "two-a": 4, "two-b": 3}


def test_a_report_counts_once_in_its_source_and_a_refused_write_counts_nothing(as_detector):
    account = AccountFactory()
    for n in range(3):
        services.violation_report(actor=as_detector, account=account, rule="spam-fraud", source="counted",
                                  external_id=f"c{n}", summary="s")
    assert sum(SourceTally.objects.filter(source="counted").values_list("reports", flat=True)) == 3
    case = Violation.objects.filter(source="counted").first().case
    clash = Violation(account=account, rule=Rule.objects.get(code="spam-fraud"), case=case, severity="low",
                      source="counted", external_id="c1", reported_by="x", reporter_kind="token",
                      observed_at=timezone.now(), summary="again")
    events = AuditEvent.objects.count()
    with pytest.raises(IntegrityError), transaction.atomic():  # the (source, external_id) is taken
        reports_insert(actor=as_detector, violations=[clash])
    assert sum(SourceTally.objects.filter(source="counted").values_list("reports", flat=True)) == 3
    assert AuditEvent.objects.count() == events and Violation.objects.filter(source="counted").count() == 3
