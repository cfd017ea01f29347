"""Prometheus counters kept in the processes that count (the gate's decisions, actions applied and failed).

Incrementing one is a dictionary-free attribute call on a pre-made child (the gate's hot path pays no round
trip). A process's counters are its own: under gunicorn (or several Celery workers) set ``PROMETHEUS_MULTIPROC_DIR``
to an empty directory shared by the processes of a host, before they start; each process then writes its counts
to a memory-mapped file there, and ``GET /metrics`` sums them (``prometheus_client.multiprocess``). Without it, the
scraping process reports its own counts (one process: ``runserver``, the tests).
"""

import os

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.multiprocess import MultiProcessCollector

GATE_REASONS = ("ok", "throttled", "rate_limited", "suspended", "revoked", "unknown_key", "wrong_key_type",
                "store_unavailable")
ACTION_KINDS = ("warning", "throttle", "suspend", "terminate")

COUNTERS = CollectorRegistry(auto_describe=True)
GATE_DECISIONS = Counter("millimetric_gate_decisions", "Gate decisions by reason (ok and throttled are allowed; "
                         "store_unavailable: the edge store could not answer, a 503).", ["reason"], registry=COUNTERS)
ACTIONS_APPLIED = Counter("millimetric_actions_applied", "Actions applied, by kind.", ["kind"], registry=COUNTERS)
ACTIONS_FAILED = Counter("millimetric_actions_failed", "Actions that failed for good (after their last try), by kind.",
                         ["kind"], registry=COUNTERS)

# One child per label value, made once: the gate increments ``GATE[reason]`` and nothing else.
GATE = {reason: GATE_DECISIONS.labels(reason) for reason in GATE_REASONS}
APPLIED = {kind: ACTIONS_APPLIED.labels(kind) for kind in ACTION_KINDS}
FAILED = {kind: ACTIONS_FAILED.labels(kind) for kind in ACTION_KINDS}


class _Local:
    def collect(self):
        return COUNTERS.collect()


def counters_collector(directory: str | None = None):
    """What ``/metrics`` reads for the counters: every process's on this host in multiprocess mode, else this
    process's own."""
    directory = directory or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        return MultiProcessCollector(None, path=directory)
    return _Local()
