"""Sending Celery tasks from the web and worker processes.

A broker that is down must not fail the request whose transaction already committed: the
send is logged and the periodic sweeps (``enforcement`` and ``accounts``) find the work again
from the database, which is the source of truth.
"""

import logging
from functools import partial

from celery import current_app
from django.db import transaction

log = logging.getLogger(__name__)


def enqueue(task, *args) -> bool:
    """Send a task (a task or its registered name); if the broker is unreachable, log it: the sweep sends it again.
    Returns whether it was sent.

    By name, a lower module sends a task that a higher one defines without importing it.
    """
    if isinstance(task, str):
        task = current_app.tasks[task]
    try:
        task.apply_async(args=args)
    except Exception:
        log.exception("could not enqueue %s%r; the sweep will retry", task.name, args)
        return False
    return True


def enqueue_on_commit(task, *args) -> None:
    """Send a task once the current transaction commits (at once outside one); never if it rolls back."""
    transaction.on_commit(partial(enqueue, task, *args))
