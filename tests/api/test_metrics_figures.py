"""Every figure of the metrics summary on a known history (tests/metrics_fixture.py), read from the daily
roll-up; the roll-up itself: idempotent, recomputing recent days, and what it costs to read."""

from datetime import date, timedelta

import pytest
from django.core.management import call_command

from enforcement import metrics, services
from enforcement.models import DailyFigure, Source
from enforcement.services.rollups import wait_bucket
from tests.api.helpers import assert_error
from tests.factories import ViolationFactory, rule
from tests.metrics_fixture import D0, D1, D2, EXPECTED, SINCE, UNTIL, at, build

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(as_lead, lead, second_lead, agent):
    built = build(as_lead=as_lead, lead=lead, second_lead=second_lead, agent=agent)
    services.metrics_rollup(now=at(D2, "23:59"))
    return built


def test_every_figure_of_the_summary_on_a_known_history(make_client, history):
    response = make_client("audit:read").get(
        f"/api/v1/metrics/summary/?since={SINCE.isoformat()[:19]}Z&until={UNTIL.isoformat()[:19]}Z")
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    for field, expected in EXPECTED.items():
        assert body[field] == expected, field
    assert body["rolled_up_at"] == at(D2, "23:59").isoformat()


def test_a_period_counts_whole_utc_days(history):
    # A period inside 10 November counts that whole day; the 9th has only what is outside the others.
    inside = metrics.summary(since=at(D1, "11:00"), until=at(D1, "11:30"))
    assert inside["days"] == {"first": D1, "last": D1} and inside["reports"]["total"] == 3
    before = metrics.summary(since=at(D0, "00:00"), until=at(D1, "00:00"))
    assert before["reports"] == {"total": 1, "by_rule": {"spam-fraud": 1}, "by_source": {"det-a": 1}}
    assert before["staff"] == [{"staff": "lead", "cases_handled": 0, "actions_proposed": 1, "approvals": 0,
                                "appeals_decided": 0}]
    # c0's first review: the lead's warning an hour after its opening, within the low SLA.
    assert before["review"]["time_to_first_review_p50_s"] == 3600 and before["review"]["reviewed"] == 1
    assert before["sla"] | {"by_severity": None} == {"breaches": 0, "on_time": 1, "late_reviews": 0,
                                                     "overdue_unreviewed": 0, "by_severity": None}


def test_the_summary_reads_the_roll_up_in_a_few_queries(history, django_assert_num_queries):
    # 6 queries for the figures, and one per detector shown for its precision.
    with django_assert_num_queries(6 + 3):
        metrics.summary(since=SINCE, until=UNTIL)


def test_a_whole_month_reads_its_month_rows_and_counts_the_same(history):
    from datetime import UTC, datetime

    assert DailyFigure.objects.filter(span="month", day=date(2026, 11, 1)).exists()
    month = metrics.summary(since=datetime(2026, 11, 1, tzinfo=UTC), until=datetime(2026, 12, 1, tzinfo=UTC))
    days = metrics.summary(since=at(D0, "00:00"), until=at(D2, "23:00"))
    assert len(month["per_day"]) == 30
    for field in ("reports", "cases", "review", "approval", "sla", "actions", "appeals", "staff", "detectors"):
        assert month[field] == days[field], field
    # Across months: the end days of October and December from their day rows, November from its month rows.
    across = metrics.summary(since=datetime(2026, 10, 20, tzinfo=UTC), until=datetime(2026, 12, 3, tzinfo=UTC))
    assert across["reports"] == days["reports"] and across["review"] == days["review"]


def test_the_roll_up_is_idempotent_and_recomputes_recent_days(history):
    rows = list(DailyFigure.objects.order_by("span", "day", "figure", "rule", "dim")
                .values_list("span", "day", "figure", "rule", "dim", "count", "waits"))
    assert services.metrics_rollup(since=date(2026, 11, 9), until=date(2026, 11, 11), now=at(D2, "23:59")) == [
        date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 11)]
    assert rows == list(DailyFigure.objects.order_by("span", "day", "figure", "rule", "dim")
                        .values_list("span", "day", "figure", "rule", "dim", "count", "waits"))
    # A late report of the 11th: the next run redoes the day before its last one and that one, not the 9th.
    ViolationFactory(rule=rule("spam-fraud"), source="det-b", reported_at=at(D2, "22:00"))
    assert services.metrics_rollup(now=at(D2, "23:59")) == [date(2026, 11, 10), date(2026, 11, 11)]
    assert metrics.summary(since=SINCE, until=UNTIL)["reports"]["by_source"] == {"agent-x": 1, "det-a": 3,
                                                                                  "det-b": 2}


def test_nothing_rolled_up_yet_reads_as_zeros(db):
    body = metrics.summary(since=SINCE, until=UNTIL)
    assert body["rolled_up_at"] is None and body["reports"]["total"] == 0
    assert [day["day"] for day in body["per_day"]] == [D1, D2]
    assert body["review"]["time_to_first_review_p50_s"] is None and body["appeals"]["overturn_rate"] is None


def test_a_detector_without_act_first_is_listed_even_without_reports_in_the_period(history):
    Source.objects.create(name="quiet", act_first_withheld_at=at(D0, "00:00"))
    [quiet] = [d for d in metrics.summary(since=SINCE, until=UNTIL)["detectors"] if d["source"] == "quiet"]
    assert quiet == {"source": "quiet", "reports": 0, "precision": None, "decided": 0, "act_first_allowed": False}


def test_wait_buckets_round_down_to_the_minute_five_minutes_hour_and_day():
    assert [wait_bucket(s) for s in (0, 59.9, 61, 3599, 3600, 3899, 86399, 86400, 90000, 7 * 86400 + 5)] == [
        0, 0, 60, 3540, 3600, 3600, 86100, 86400, 90000, 7 * 86400]
    assert metrics.histogram_percentile({60: 1, 600: 1, 3600: 2}, 0.5) == 600
    assert metrics.histogram_percentile({60: 1, 600: 1, 3600: 2}, 0.9) == 3600
    assert metrics.histogram_percentile({}, 0.5) is None


def test_the_summary_refuses_a_period_over_two_years(make_client):
    assert_error(make_client("audit:read").get(
        "/api/v1/metrics/summary/?since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z"),
        400, "validation_error", fields=["since"])


def test_the_rollup_command(history, capsys):
    call_command("rollup_metrics", "--since", D1, "--until", D2)
    assert "rolled up 2 day(s): 2026-11-10 to 2026-11-11" in capsys.readouterr().out
    with pytest.raises(Exception, match="--since must not be after --until"):
        call_command("rollup_metrics", "--since", D2, "--until", D1)
    with pytest.raises(Exception, match="a day such as"):
        call_command("rollup_metrics", "--since", "yesterday")
    assert DailyFigure.objects.filter(day=date(2026, 11, 10) + timedelta(days=1), figure="computed").count() == 1


def test_beat_rolls_up_the_metrics(settings, history):
    from enforcement import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["metrics-rollup"]
    assert entry["task"] == "enforcement.tasks.metrics_rollup" and entry["schedule"].total_seconds() == 300
    # Run now (December), it picks up from the day before the last day rolled up: 10 November to today.
    from django.utils import timezone

    expected = (timezone.now().date() - date(2026, 11, 10)).days + 1
    assert tasks.metrics_rollup() == expected
    assert DailyFigure.objects.filter(span="day", figure="computed", day=timezone.now().date()).exists()


def test_each_month_a_run_touches_is_summed_from_its_days(history):
    DailyFigure.objects.filter(span="month").delete()
    services.metrics_rollup(since=date(2026, 10, 30), until=date(2026, 11, 10), now=at(D2, "23:59"))
    # October has nothing to sum; November's row sums every day row it has (the 11th's from the earlier run).
    assert set(DailyFigure.objects.filter(span="month").values_list("day", flat=True)) == {date(2026, 11, 1)}
    november = dict(DailyFigure.objects.filter(span="month", day=date(2026, 11, 1), figure="reports_source")
                    .values_list("dim", "count"))
    assert november == {"agent-x": 1, "det-a": 4, "det-b": 1}
