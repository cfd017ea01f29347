#!/usr/bin/env python
"""Recovery times after faults, with a real Celery worker and beat (``worker -B``), a private Redis (broker,
edge store, cache) and a private SMTP server that this script starts, breaks and restores.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enf_faults python bench/faults.py [--sweep-interval 60]

The database named by DATABASE_URL is migrated and written to: use a scratch database. Prints one line per
fault: ``<fault>: recovered in <seconds> s (bound <seconds> s)``. The bound is what the settings promise:
a lost apply is re-sent after SWEEP_GRACE_SECONDS by the next sweep (grace + one interval), a killed
worker's action likewise, a flushed edge store is rebuilt by the check every EDGE_REBUILD_CHECK_SECONDS,
and a notice waits at most its current backoff once SMTP is back. Biases: one machine, an idle database,
one action per fault; the sweep interval can be shortened with --sweep-interval to run it quicker.
"""

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def until(condition, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.2)
    raise SystemExit(f"not recovered within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep-interval", type=int, default=60, help="SWEEP_INTERVAL_SECONDS (default 60)")
    parser.add_argument("--grace", type=int, default=30, help="SWEEP_GRACE_SECONDS (default 30)")
    parser.add_argument("--edge-check", type=int, default=15, help="EDGE_REBUILD_CHECK_SECONDS (default 15)")
    parser.add_argument("--smtp-outage", type=int, default=60, help="seconds the SMTP server stays down")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("bench/faults.py measures PostgreSQL: set DATABASE_URL to a scratch postgres:// database.")

    from tests.emails.mailbox import LoopbackController, Mailbox

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # the SMTP server's chatter
    from tests.faults.servers import PrivateRedis

    scratch = Path(tempfile.mkdtemp(prefix="faults-bench-"))
    redis = PrivateRedis(scratch / "redis")
    redis.start()
    mailbox = Mailbox()
    mailbox.controller = LoopbackController(mailbox)
    mailbox.controller.start()
    mailbox.port = mailbox.controller.port
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "REDIS_URL": redis.url(0), "CACHE_URL": redis.url(1),
        "CELERY_BROKER_URL": redis.url(2), "EMAIL_URL": f"smtp://127.0.0.1:{mailbox.port}",
        "SWEEP_INTERVAL_SECONDS": str(args.sweep_interval), "SWEEP_GRACE_SECONDS": str(args.grace),
        "EDGE_REBUILD_CHECK_SECONDS": str(args.edge_check), "VAR_DIR": str(scratch / "var"),
        "CELERY_TASK_ALWAYS_EAGER": "0",
    })
    import django

    django.setup()
    from django.core.management import call_command

    from accounts import edge, gate
    from accounts.tokens import generate_token, hash_token, prefix_of
    from enforcement import notifications, services
    from enforcement.actors import SYSTEM, Actor
    from enforcement.models import EnforcementAction, Notification
    from lib import queue
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    run = time.time_ns() % 10**9
    lead = Actor.for_user(UserFactory.create(username=f"faults-lead-{run}", role="tns_lead"))

    def customer(n: int):
        account, _ = services.account_upsert(actor=SYSTEM, public_id=f"acct_fault{run:09d}{n}", name=f"Fault {n}",
                                             email=f"owner{n}@fault.example")
        token = generate_token("secret")
        services.key_upsert(actor=SYSTEM, prefix=prefix_of(token), account=account, kind="secret",
                            token_sha256=hash_token(token), rate_limit_per_minute=100, ip_rate_limit_per_minute=50)
        case = services.violation_report(actor=SYSTEM, account=account, rule="secrets-in-events", source="faults-bench",
                                         external_id=f"{run}-{n}", summary="bench").violation.case
        return account, token, case

    def start_worker() -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "--pool", "solo", "--loglevel",
             "WARNING", "--without-gossip", "--without-mingle", "--hostname", f"faults-{run}@%h",
             "--schedule", str(scratch / "beat-schedule")],
            cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killing it takes its embedded beat along
        )
        time.sleep(3)
        return process

    bound_sweep = args.grace + args.sweep_interval
    worker = start_worker()
    try:
        # 1. The broker loses the apply message.
        _, _, case = customer(1)
        real_enqueue = queue.enqueue_on_commit
        queue.enqueue_on_commit = lambda task, *a: None
        action = services.action_propose(actor=lead, case_id=case.pk, kind="suspend", reason="bench")
        queue.enqueue_on_commit = real_enqueue
        seconds = until(lambda: EnforcementAction.objects.get(pk=action.pk).status == "applied", bound_sweep * 3)
        print(f"lost apply message: recovered in {seconds:.1f} s (bound {bound_sweep} s)", flush=True)

        # 2. The worker is killed in the middle of the apply (SIGKILL: no ack, no cleanup), then restarted. The
        #    apply is held inside its transaction by a lock this script keeps on the account row meanwhile.
        account, _, case = customer(2)
        hold, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold_account_lock, args=(account.pk, hold, release))
        holder.start()
        hold.wait()
        action = services.action_propose(actor=lead, case_id=case.pk, kind="suspend", reason="bench")
        time.sleep(2)  # the worker took the message and waits on the lock
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its beat, with no chance to ack or clean up
        worker.wait()
        killed_at = time.monotonic()
        release.set()
        holder.join()
        worker = start_worker()
        until(lambda: EnforcementAction.objects.get(pk=action.pk).status == "applied", bound_sweep * 3)
        print(f"worker killed mid-apply: recovered in {time.monotonic() - killed_at:.1f} s "
              f"(bound {bound_sweep} s + restart)", flush=True)

        # 3. The edge store is flushed.
        _, token, _ = customer(3)
        edge.rebuild()
        edge.get_store().clear()
        seconds = until(lambda: _gate_ok(gate, edge, token), args.edge_check * 4)
        print(f"edge store flushed: recovered in {seconds:.1f} s (bound {args.edge_check} s)", flush=True)

        # 4. SMTP down, a notice written, SMTP back.
        account, _, _ = customer(4)
        mailbox.go_down()
        [row] = notifications.notify_account(template="customer_key_revoked", event_key=f"faults:{run}",
                                             account=account, context={"key_prefix": "sk_live_faultben"})
        time.sleep(args.smtp_outage)
        mailbox.come_back()
        back = time.monotonic()
        pending = Notification.objects.get(pk=row.pk)
        bound = max(0, int(pending.next_attempt_at.timestamp() - time.time())) if pending.next_attempt_at else 0
        until(lambda: Notification.objects.get(pk=row.pk).status == "sent", 3600)
        print(f"SMTP back after a {args.smtp_outage} s outage: delivered {time.monotonic() - back:.1f} s later "
              f"(bound {bound + args.sweep_interval} s: its backoff, then the next sweep)", flush=True)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)
        mailbox.controller.stop()
        redis.kill()


def _hold_account_lock(account_id: int, hold, release) -> None:
    from django.db import connection, transaction

    from accounts.models import Account

    with transaction.atomic():
        Account.objects.select_for_update().get(pk=account_id)
        hold.set()
        release.wait(60)
    connection.close()


def _gate_ok(gate, edge, token) -> bool:
    try:
        return gate.check(token, "203.0.113.9").reason == "ok"
    except edge.EdgeUnavailable:
        return False


if __name__ == "__main__":
    main()
