"""lib/bulk.py: rows written by ``bulk_insert`` (one JSON parameter on PostgreSQL) read back exactly as the same
objects written by ``bulk_create``: every column, JSON, times, foreign keys and nulls, in order, with their keys."""

from datetime import timedelta

import pytest
from django.utils import timezone

from enforcement.models import AuditEvent, Violation
from lib.bulk import bulk_insert

pytestmark = pytest.mark.django_db


def audit_rows(account, case=None, *, tag: str):
    return [
        AuditEvent(actor_type="token", actor_label=f"token:det-{tag}", verb="violation.reported",
                   target_type="violation", target_id=str(n), case=case, account=account if n % 2 else None,
                   before=None if n % 3 else {"status": "open", "nested": {"list": [1, "two", None]}},
                   after={"quote": 'say "hi" \\ {braces} é\u2028', "n": n, "flag": n % 2 == 0}, note=f"note {n}\n\t")
        for n in range(7)
    ]


def comparable(event: AuditEvent) -> dict:
    values = {f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields}
    values.pop("id"), values.pop("created_at"), values.pop("actor_label")
    return values


def test_bulk_insert_writes_what_bulk_create_writes(account):
    inserted, created = audit_rows(account, tag="a"), audit_rows(account, tag="b")
    before = timezone.now()
    bulk_insert(AuditEvent, inserted)
    AuditEvent.objects.bulk_create(created)
    assert all(e.pk and not e._state.adding for e in inserted)
    assert [e.pk for e in inserted] == sorted(e.pk for e in inserted)  # the keys in the objects' order
    read = {e.pk: e for e in AuditEvent.objects.filter(pk__in=[e.pk for e in inserted + created])}
    for mine, theirs in zip(inserted, created, strict=True):
        assert comparable(read[mine.pk]) == comparable(read[theirs.pk]) == comparable(mine)
        assert before - timedelta(seconds=1) < read[mine.pk].created_at <= timezone.now()  # auto_now_add ran
        assert read[mine.pk].created_at == mine.created_at


def test_bulk_insert_of_violations_keeps_their_order_and_relations(as_detector, account):
    from enforcement import services

    case = services.violation_report(actor=as_detector, account=account, rule="spam-fraud", source="bulk",
                                     external_id="first", summary="first").violation.case
    rule = case.violations.get().rule
    when = timezone.now() - timedelta(days=3)
    violations = [
        Violation(account=account, rule=rule, case=case, severity="high", source="bulk", external_id=f"v{n}",
                  reported_by="token:x", reporter_kind="token", observed_at=when, summary=f"s{n}",
                  evidence={"ip": "203.0.113.1", "n": n})
        for n in range(5)
    ]
    bulk_insert(Violation, violations)
    stored = list(Violation.objects.filter(source="bulk", external_id__startswith="v").order_by("pk"))
    assert [v.external_id for v in stored] == [f"v{n}" for n in range(5)]
    assert [v.pk for v in stored] == [v.pk for v in violations]
    assert all(v.case_id == case.pk and v.account_id == account.pk and v.observed_at == when for v in stored)
    assert stored[3].evidence == {"ip": "203.0.113.1", "n": 3} and stored[3].status == Violation.Status.OPEN
    bulk_insert(Violation, [])  # nothing to do


def test_values_taken_as_they_are_are_what_the_fields_would_store():
    from django.db import connection

    from accounts.models import Account, APIKey
    from enforcement.models import Case
    from lib.bulk import _as_is_type

    samples = {str: "text \"q\" é", int: 2**40, bool: False}
    checked = 0
    for model in (AuditEvent, Violation, Case, Account, APIKey):
        for field in model._meta.concrete_fields:
            kind = _as_is_type(field)
            if kind is not None:
                assert field.get_db_prep_save(samples[kind], connection) == samples[kind]
                assert field.get_db_prep_save(None, connection) is None
                checked += 1
    assert checked > 10


def test_nulls_and_aware_times_taken_as_they_are_are_what_the_fields_would_store():
    """``row_documents`` writes None as null for every field, and an aware time as its ISO text, without the
    fields' conversions: what those conversions would give (on PostgreSQL, the only database it writes to)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from django.db import connection, models

    from accounts.models import Account, APIKey
    from enforcement.models import Case
    from lib.bulk import _plain

    if connection.vendor != "postgresql":
        pytest.skip("row_documents is PostgreSQL's")
    times = [datetime(2026, 12, 1, 14, 30, 5, 123456, tzinfo=UTC),
             datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Paris"))]
    for model in (AuditEvent, Violation, Case, Account, APIKey):
        for field in model._meta.concrete_fields:
            if not isinstance(field, models.JSONField):
                assert _plain(field.get_db_prep_save(None, connection)) is None, field
            if isinstance(field, models.DateTimeField):
                for value in times:
                    assert _plain(field.get_db_prep_save(value, connection)) == value.isoformat(), field
