"""The audit CSV export streams from the database: keyset chunks on (created_at, id), over a date range it
requires and caps, each chunk under a statement timeout, and a cancelled download runs no further query."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enforcement.admin.audit import audit_csv_rows
from enforcement.models import AuditEvent

pytestmark = pytest.mark.django_db
EXPORT = "/admin/enforcement/auditevent/export/"


def insert_event(at, verb="case.commented", note="") -> int:
    """An audit event written at ``at`` (the model stamps the present; the log takes inserts only)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO enforcement_auditevent (created_at, actor_type, actor_label, verb, target_type, target_id,"
            " note) VALUES (%s, 'system', 'system', %s, 'case', '1', %s) RETURNING id",
            [connection.ops.adapt_datetimefield_value(at), verb, note],
        )
        return cursor.fetchone()[0]


def rows_of(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def in_range(since, until) -> list[int]:
    return list(AuditEvent.objects.filter(created_at__gte=since, created_at__lt=until)
                .order_by("created_at", "id").values_list("id", flat=True))


@pytest.fixture
def small_chunks(settings):
    settings.AUDIT_EXPORT_CHUNK_SIZE = 3


def test_the_export_is_the_events_in_the_range_in_order(auditor_client, small_chunks):
    now = timezone.now().replace(microsecond=0)
    since, until = now - timedelta(days=3), now - timedelta(days=1)
    insert_event(since - timedelta(seconds=1), note="before")
    inside = [insert_event(since + timedelta(hours=h), note=f"h{h}") for h in (5, 1, 30, 1, 12, 0, 47)]
    insert_event(until, note="after: the end is excluded")
    response = auditor_client.get(EXPORT, {"created_at__gte": str(since), "created_at__lt": str(until)})
    assert response.status_code == 200 and response.streaming
    rows = rows_of(response)
    assert [int(row["id"]) for row in rows] == in_range(since, until)
    assert sorted(int(row["id"]) for row in rows) == sorted(inside)
    assert [row["note"] for row in rows] == ["h0", "h1", "h1", "h5", "h12", "h30", "h47"]
    assert [row["created_at"] for row in rows] == sorted(row["created_at"] for row in rows)


def test_chunk_boundaries_inside_a_run_of_equal_timestamps_lose_and_repeat_nothing(auditor_client, small_chunks):
    at = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    same = [insert_event(at, note=f"same-{i}") for i in range(8)]  # chunks of 3 cut the run twice
    later = [insert_event(at + timedelta(seconds=1), note=f"later-{i}") for i in range(2)]
    response = auditor_client.get(EXPORT, {"created_at__gte": str(at), "created_at__lt": str(at + timedelta(hours=1))})
    ids = [int(row["id"]) for row in rows_of(response)]
    assert ids == sorted(same) + sorted(later)


def test_the_export_needs_a_date_range_and_says_so(auditor_client):
    insert_event(timezone.now())
    response = auditor_client.get(EXPORT, {"family": "case"}, follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/enforcement/auditevent/?family=case")
    page = response.content.decode()
    assert "Choose a date range under &quot;By created at&quot; before exporting" in page
    assert "at most 366 days" in page
    assert response["Content-Type"].startswith("text/html")


def test_a_range_longer_than_the_cap_is_refused_with_the_cap(auditor_client, settings):
    settings.AUDIT_EXPORT_MAX_DAYS = 31
    now = timezone.now()
    response = auditor_client.get(EXPORT, {"created_at__gte": str(now - timedelta(days=40)),
                                           "created_at__lt": str(now)}, follow=True)
    assert "That date range is too long to export: at most 31 days." in response.content.decode()
    # Up to now, from a start within the cap: served.
    response = auditor_client.get(EXPORT, {"created_at__gte": str(now - timedelta(days=30))})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


def test_closing_the_download_early_runs_no_further_query():
    at = timezone.now() - timedelta(minutes=5)
    for i in range(10):
        insert_event(at, note=f"n{i}")
    rows = audit_csv_rows(AuditEvent.objects.filter(created_at__gte=at), chunk_size=2)
    with CaptureQueriesContext(connection) as queries:
        taken = [next(rows) for _ in range(4)]  # the header and three events: two chunks read
        read = len(queries)
        rows.close()  # what the server does when the client goes away
        with pytest.raises(StopIteration):
            next(rows)
    assert taken[0].startswith("id,created_at")
    assert read > 0
    assert len(queries) == read
    selects = [q["sql"] for q in queries.captured_queries if "enforcement_auditevent" in q["sql"]]
    assert len(selects) == 2  # of the five chunks, only the two taken were read


def test_a_cancelled_response_closes_its_reader(auditor_client, small_chunks):
    at = timezone.now() - timedelta(minutes=5)
    for _ in range(10):
        insert_event(at)
    response = auditor_client.get(EXPORT, {"created_at__gte": str(at)})
    stream = iter(response.streaming_content)
    next(stream), next(stream)
    with CaptureQueriesContext(connection) as queries:
        response.close()
        assert list(stream) == []
    assert not [q for q in queries.captured_queries if "enforcement_auditevent" in q["sql"]]


@pytest.mark.postgres
def test_each_chunk_runs_under_the_statement_timeout(settings):
    settings.AUDIT_EXPORT_STATEMENT_TIMEOUT_MS = 1234
    at = timezone.now() - timedelta(minutes=5)
    for _ in range(3):
        insert_event(at)
    with CaptureQueriesContext(connection) as queries:
        rows = list(audit_csv_rows(AuditEvent.objects.filter(created_at__gte=at), chunk_size=2))
    assert len(rows) == 4
    sql = [q["sql"] for q in queries.captured_queries]
    timeouts = [i for i, text in enumerate(sql) if "statement_timeout" in text and "1234ms" in text]
    reads = [i for i, text in enumerate(sql) if "enforcement_auditevent" in text]
    assert len(timeouts) == len(reads) == 2
    assert all(t < r for t, r in zip(timeouts, reads, strict=True))
