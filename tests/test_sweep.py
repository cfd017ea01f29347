"""The sweep at a backlog: one run at a time, bounded batches earliest due first, work handed to tasks in chunks,
and an action handed over not sent again until its back-off passes (but sent again after it)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from enforcement import services, tasks
from enforcement.models import AuditEvent, Case, EnforcementAction
from enforcement.services.sweep import sweep_lock
from lib import queue
from tests.factories import CaseFactory, EnforcementActionFactory

pytestmark = pytest.mark.django_db
A = EnforcementAction.Status
APPLY_CHUNK, EXPIRE_CHUNK = "enforcement.tasks.apply_actions", "enforcement.tasks.expire_actions"


@pytest.fixture
def sent(monkeypatch):
    """The broker as the sweep sees it: messages recorded, none delivered (every one is lost)."""
    messages = []

    def record(task, *args):
        messages.append((task if isinstance(task, str) else task.name, *args))
        return True

    monkeypatch.setattr(queue, "enqueue", record)
    return messages


@pytest.fixture
def knobs(settings):
    def set_(**values):
        settings.ENFORCEMENT = {**settings.ENFORCEMENT, **values}

    set_(SWEEP_GRACE_SECONDS=30, SWEEP_REQUEUE_BACKOFF_SECONDS=600)
    return set_


def scheduled(minutes_ago: int, kind="suspend") -> EnforcementAction:
    """An action scheduled ``minutes_ago`` whose apply message never arrived."""
    case = CaseFactory(status=Case.Status.OPEN)
    return EnforcementActionFactory(case=case, kind=kind, status=A.SCHEDULED, applied_at=None,
                                    created_at=timezone.now() - timedelta(minutes=minutes_ago),
                                    scheduled_at=timezone.now() - timedelta(minutes=minutes_ago))


def expiring(minutes_ago: int) -> EnforcementAction:
    """A throttle in force whose expiry passed ``minutes_ago``."""
    case = CaseFactory(status=Case.Status.OPEN)
    return EnforcementActionFactory(case=case, kind="throttle", rate_limit_per_minute=10,
                                    expires_at=timezone.now() - timedelta(minutes=minutes_ago))


def ids_sent(messages, task):
    return [action_id for name, chunk, *_ in messages if name == task for action_id in chunk]


# ------------------------------------------------------------------ one run at a time


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_sweep_while_one_runs_does_nothing(monkeypatch, knobs):
    """Two sweeps at once: the first is held inside its hand-over; the second finds the lock taken."""
    action = scheduled(minutes_ago=5)
    inside, release, sent = threading.Event(), threading.Event(), []

    def slow_send(task, *args):
        sent.append((task, *args))
        inside.set()
        release.wait(10)
        return True

    monkeypatch.setattr(queue, "enqueue", slow_send)
    reports = []

    def first_sweep():
        try:
            reports.append(services.sweep())
        finally:
            connection.close()

    thread = threading.Thread(target=first_sweep)
    thread.start()
    try:
        assert inside.wait(10), "the first sweep never reached its hand-over"
        second = services.sweep()
    finally:
        release.set()
        thread.join(10)
    assert second.skipped
    assert (second.requeued_actions, second.expired_actions, second.requeued_notifications) == ([], [], [])
    assert sent == [(APPLY_CHUNK, [action.pk])]  # only the first sweep sent anything
    [first] = reports
    assert not first.skipped and first.requeued_actions == [action.pk]
    # The lock is released when a run ends: the next run goes ahead.
    assert not services.sweep().skipped


def test_the_lock_is_refused_while_held_elsewhere_and_free_again_after(sent, knobs):
    action = scheduled(minutes_ago=5)
    holding, release = threading.Event(), threading.Event()

    def hold():
        try:
            with sweep_lock() as held:
                assert held
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        report = services.sweep()
        assert report.skipped and sent == []
        assert EnforcementAction.objects.get(pk=action.pk).requeued_at is None
    finally:
        release.set()
        thread.join(10)
    assert services.sweep().requeued_actions == [action.pk]


# ------------------------------------------------------------------ bounded batches, earliest due first, in chunks


def test_a_run_takes_a_bounded_batch_earliest_due_first_in_chunks(sent, knobs):
    knobs(SWEEP_BATCH_SIZE=3, SWEEP_CHUNK_SIZE=2)
    stuck = [scheduled(minutes_ago=m) for m in (5, 50, 20, 40, 10)]  # earliest due: 50, 40, 20, 10, 5
    due = [expiring(minutes_ago=m) for m in (1, 30, 7, 60)]  # earliest due: 60, 30, 7, 1
    by_due = sorted(stuck, key=lambda a: a.scheduled_at)
    expiring_by_due = sorted(due, key=lambda a: a.expires_at)

    first = services.sweep()
    assert first.requeued_actions == [a.pk for a in by_due[:3]]
    assert first.expired_actions == [a.pk for a in expiring_by_due[:3]]
    assert [(name, len(chunk)) for name, chunk, *_ in sent] == [
        (APPLY_CHUNK, 2), (APPLY_CHUNK, 1), (EXPIRE_CHUNK, 2), (EXPIRE_CHUNK, 1)
    ]
    sent.clear()
    second = services.sweep()  # the rest; what the first handed over waits out its back-off
    assert second.requeued_actions == [a.pk for a in by_due[3:]]
    assert second.expired_actions == [a.pk for a in expiring_by_due[3:]]
    assert services.sweep().requeued_actions == []


# ------------------------------------------------------------------ no re-sending every tick


def test_a_stuck_action_is_not_sent_again_within_the_back_off_and_is_after_it(sent, knobs):
    action = scheduled(minutes_ago=5)
    now = timezone.now()
    assert services.sweep(now=now).requeued_actions == [action.pk]
    for later in (60, 300, 599):  # beat's next ticks, within the 600 s back-off
        assert services.sweep(now=now + timedelta(seconds=later)).requeued_actions == []
    assert ids_sent(sent, APPLY_CHUNK) == [action.pk]
    # That message was lost too: after the back-off the action is sent once more.
    assert services.sweep(now=now + timedelta(seconds=601)).requeued_actions == [action.pk]
    assert ids_sent(sent, APPLY_CHUNK) == [action.pk, action.pk]


def test_an_expiry_handed_over_is_not_sent_again_within_the_back_off(sent, knobs):
    action = expiring(minutes_ago=1)
    now = timezone.now()
    assert services.sweep(now=now).expired_actions == [action.pk]
    assert services.sweep(now=now + timedelta(seconds=60)).expired_actions == []
    assert services.sweep(now=now + timedelta(seconds=601)).expired_actions == [action.pk]


def test_a_stamp_from_before_the_action_fell_due_does_not_hold_it_back(sent, knobs):
    """Handed over to be applied, then applied, then its expiry passes a minute later: sent at once."""
    action = expiring(minutes_ago=1)
    EnforcementAction.objects.filter(pk=action.pk).update(requeued_at=timezone.now() - timedelta(minutes=2))
    assert services.sweep().expired_actions == [action.pk]
    # Likewise a failed action scheduled again (action_retry) after an earlier hand-over.
    retried = scheduled(minutes_ago=1)
    EnforcementAction.objects.filter(pk=retried.pk).update(requeued_at=timezone.now() - timedelta(minutes=3))
    assert services.sweep().requeued_actions == [retried.pk]


def test_a_chunk_the_broker_refused_is_not_stamped_and_goes_with_the_next_run(monkeypatch, knobs):
    action = scheduled(minutes_ago=5)
    monkeypatch.setattr(queue, "enqueue", lambda task, *args: False)  # the broker is down
    assert services.sweep().requeued_actions == []
    assert EnforcementAction.objects.get(pk=action.pk).requeued_at is None
    sent = []
    monkeypatch.setattr(queue, "enqueue", lambda task, *args: sent.append(args) or True)
    assert services.sweep().requeued_actions == [action.pk]  # no back-off to wait out
    assert sent == [([action.pk],)]


# ------------------------------------------------------------------ the real work, run twice


def test_running_the_sweep_twice_applies_and_expires_once(knobs):
    """Tasks run in-process here: the chunks really apply and expire."""
    stuck, due = scheduled(minutes_ago=5), expiring(minutes_ago=1)
    first = services.sweep()
    assert (first.requeued_actions, first.expired_actions) == ([stuck.pk], [due.pk])
    assert EnforcementAction.objects.get(pk=stuck.pk).status == A.APPLIED
    assert EnforcementAction.objects.get(pk=due.pk).status == A.EXPIRED
    later = timezone.now() + timedelta(hours=1)  # past any back-off
    second = services.sweep(now=later)
    assert (second.requeued_actions, second.expired_actions) == ([], [])
    assert AuditEvent.objects.filter(verb="action.applied", target_id=str(stuck.pk)).count() == 1
    assert AuditEvent.objects.filter(verb="action.expired", target_id=str(due.pk)).count() == 1


def test_the_chunk_tasks_skip_what_is_gone_or_not_due(knobs):
    due, not_yet = expiring(minutes_ago=1), expiring(minutes_ago=-60)
    missing = EnforcementAction.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000
    assert tasks.expire_actions([due.pk, not_yet.pk, missing]) == {"done": 2, "missing": 1, "failed": 0}
    assert EnforcementAction.objects.get(pk=due.pk).status == A.EXPIRED
    assert EnforcementAction.objects.get(pk=not_yet.pk).status == A.APPLIED
    stuck = scheduled(minutes_ago=5)
    assert tasks.apply_actions([stuck.pk, stuck.pk, missing]) == {"done": 2, "missing": 1, "handed_on": 0}
    assert AuditEvent.objects.filter(verb="action.applied", target_id=str(stuck.pk)).count() == 1


def test_an_apply_that_fails_in_a_chunk_goes_on_alone_with_its_retries(sent, knobs, monkeypatch):
    broken, fine = scheduled(minutes_ago=5), scheduled(minutes_ago=5)
    real_apply = services.action_apply

    def apply(*, action_id, **kwargs):
        if action_id == broken.pk:
            raise RuntimeError("the edge store is down")
        return real_apply(action_id=action_id, **kwargs)

    monkeypatch.setattr(services, "action_apply", apply)
    assert tasks.apply_actions([broken.pk, fine.pk]) == {"done": 1, "missing": 0, "handed_on": 1}
    assert sent == [("enforcement.tasks.apply_action", broken.pk)]
    assert EnforcementAction.objects.get(pk=fine.pk).status == A.APPLIED
