from datetime import UTC, datetime, timedelta

from enforcement.sla import review_deadline, tightened_deadline

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_review_deadline_per_severity():
    assert review_deadline("critical", T0) == T0 + timedelta(hours=1)
    assert review_deadline("high", T0) == T0 + timedelta(hours=4)
    assert review_deadline("medium", T0) == T0 + timedelta(hours=24)
    assert review_deadline("low", T0) == T0 + timedelta(hours=72)
    assert review_deadline("low", T0, sla_hours={"low": 5}) == T0 + timedelta(hours=5)


def test_a_more_severe_violation_only_brings_the_deadline_closer():
    current = T0 + timedelta(hours=72)
    assert tightened_deadline(current, "critical", T0 + timedelta(hours=2)) == T0 + timedelta(hours=3)
    assert tightened_deadline(T0 + timedelta(minutes=30), "critical", T0) == T0 + timedelta(minutes=30)
    assert tightened_deadline(None, "high", T0) == T0 + timedelta(hours=4)
