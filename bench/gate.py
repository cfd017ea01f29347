#!/usr/bin/env python
"""Gate throughput against Redis, next to raw round trips, and the time from an action's commit to the gate refusing.

    python bench/gate.py [--clients 4] [--seconds 3] [--repeats 3] [--rounds 100] [--wide-keys 1000] [--wide-rounds 10]
                         [--cluster redis+cluster://127.0.0.1:7104,127.0.0.1:7105,127.0.0.1:7106]

1. Decisions per second through ``accounts.gate.check`` with several client processes, and in the
   same run raw round trips per second with the same clients (PING, and EVALSHA of a script that
   does nothing): the physical limit of one round trip per decision. Target: gate within 2x.
   Measured twice: requests that pass (both buckets taken), and requests refused for their rate
   limit, which the same script also counts (per key and window, and per address: every request
   comes from a new address of 1,024, so the per-address top list is always full and replacing,
   its most expensive case).
2. With a real Celery worker running (started here, stopped at the end): the time from the commit
   of ``action_apply`` (a suspension) to the gate refusing the account's key, p50/p99. Then the
   same for an account with ``--wide-keys`` keys, until its last key is refused.

``--cluster URL`` (or ``EDGE_STORE_URL=redis+cluster://...``) runs both against a Redis Cluster instead (the raw
round trips then go to one master each: EVALSHA of the no-op script with no key, PING to one master); the
worker is given the same URL.

Environment (defaults in brackets): REDIS_URL [redis://127.0.0.1:6379/2], CELERY_BROKER_URL
[redis://127.0.0.1:6379/3], DATABASE_URL [postgres://postgres@127.0.0.1:5432/enf_bench_edge]
(created and migrated if missing: use a scratch database), VAR_DIR [/tmp/var-bench-edge].
"""

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.scratch import ensure_database  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/3")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/enf_bench_edge")
os.environ.setdefault("VAR_DIR", "/tmp/var-bench-edge")
os.environ.setdefault("EMAIL_URL", "locmem://")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"

IPS = [f"10.{i // 256}.{i % 256}.7" for i in range(1024)]
NOOP_LUA = "return 1"
POLL_SECONDS = 0.0005


# --------------------------------------------------------------------------- throughput


def _client(kind: str, token: str, seconds: float, start, results) -> None:
    from redis.exceptions import NoScriptError

    from accounts import edge, gate

    store = edge.get_store()
    client = store.client
    noop = client.script_load(NOOP_LUA)
    ping = client.ping
    if isinstance(store, edge.RedisClusterEdgeStore):  # one master per client process, as EVALSHA reaches one
        primaries = client.get_primaries()
        node = primaries[os.getpid() % len(primaries)]
        ping = lambda: client.ping(target_nodes=node)  # noqa: E731
    start.wait()
    count, cpu, deadline = 0, time.process_time(), time.perf_counter() + seconds
    if kind == "gate":
        while time.perf_counter() < deadline:
            for ip in IPS[count % 1024: count % 1024 + 32]:
                if not gate.check(token, ip).allowed:
                    raise SystemExit(f"bench key refused: {gate.check(token, ip)}")
            count += 32
    elif kind == "refused":
        while time.perf_counter() < deadline:
            for ip in IPS[count % 1024: count % 1024 + 32]:
                if gate.check(token, ip).reason != "rate_limited":
                    raise SystemExit(f"bench key not rate limited: {gate.check(token, ip)}")
            count += 32
    elif kind == "evalsha":
        while time.perf_counter() < deadline:
            try:
                for _ in range(32):
                    client.evalsha(noop, 0)
            except NoScriptError:  # SCRIPT FLUSH by someone else on a shared Redis: load it again, as the gate does
                noop = client.script_load(NOOP_LUA)
            count += 32
    else:
        while time.perf_counter() < deadline:
            for _ in range(32):
                ping()
            count += 32
    results.put((count, time.process_time() - cpu))


def _server_usec(client, command: str) -> tuple[int, int]:
    """Calls and server time of a command so far, summed over every master of a cluster."""
    if hasattr(client, "get_primaries"):
        per_node = list(client.info("commandstats", target_nodes=client.get_primaries()).values())
    else:
        per_node = [client.info("commandstats")]
    stats = [node.get(f"cmdstat_{command}", {}) for node in per_node]
    return sum(s.get("calls", 0) for s in stats), sum(s.get("usec", 0) for s in stats)


def throughput(kind: str, tokens: list[str], seconds: float, client) -> tuple[float, float, float]:
    """(operations per second, client CPU us per operation, Redis server us per operation)."""
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    clients = [context.Process(target=_client, args=(kind, token, seconds, start, results)) for token in tokens]
    for process in clients:
        process.start()
    time.sleep(0.5)  # let every client connect and load its script
    command = "ping" if kind == "ping" else "evalsha"
    calls, usec = _server_usec(client, command)
    start.set()
    done = [results.get(timeout=seconds + 60) for _ in clients]
    calls_after, usec_after = _server_usec(client, command)
    for process in clients:
        process.join(timeout=30)
    count, cpu = sum(c for c, _ in done), sum(t for _, t in done)
    server = (usec_after - usec) / max(1, calls_after - calls)
    return count / seconds, cpu / count * 1e6, server


# --------------------------------------------------------------------------- propagation


@contextmanager
def celery_worker(log_path: Path):
    """A real worker process, as an operator starts it; stopped (warm shutdown) on the way out."""
    from config.celery import app

    app.control.purge()
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=2", "--without-gossip",
             "--without-mingle", f"--loglevel={os.environ.get('BENCH_WORKER_LOGLEVEL', 'WARNING')}",
             "-n", f"bench-edge-{uuid.uuid4().hex[:6]}@%h"],
            cwd=ROOT, env={**os.environ, "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "60")},
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start; see {log_path}")
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def make_account(keys: int):
    from accounts import edge
    from accounts.models import Account, APIKey
    from accounts.tokens import generate_token, hash_token, prefix_of

    account = Account.objects.create(public_id=f"acct_bench{uuid.uuid4().hex[:16]}", name="Bench",
                                     email="bench@example.com")
    tokens = [generate_token("secret") for _ in range(keys)]
    APIKey.objects.bulk_create(
        [APIKey(account=account, kind="secret", prefix=prefix_of(t), token_sha256=hash_token(t),
                base_rate_limit_per_minute=10**9, rate_limit_per_minute=10**9,
                base_ip_rate_limit_per_minute=10**9, ip_rate_limit_per_minute=10**9) for t in tokens],
        batch_size=2000,
    )
    edge.publish_keys(account_id=account.pk)
    return account, tokens


def propagation_once(keys: int, lead) -> float:
    from django.db import transaction

    from accounts import gate
    from enforcement import services
    from enforcement.actors import SYSTEM
    from enforcement.services import actions as action_services

    account, tokens = make_account(keys)
    watched = tokens[-1]  # published last
    assert gate.check(watched, IPS[0]).allowed
    case = services.violation_report(actor=SYSTEM, account=account, rule="key-exposure", source="bench",
                                     external_id=account.public_id, summary="bench").violation.case
    # Proposed with its apply task held back: this process applies it, so the clock starts at that commit.
    enqueue_apply, action_services.enqueue_apply = action_services.enqueue_apply, lambda action_id: None
    try:
        action = services.action_propose(actor=lead, case_id=case.pk, kind="suspend", reason="bench")
    finally:
        action_services.enqueue_apply = enqueue_apply
    committed = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.perf_counter()))  # runs before the enqueues
        services.action_apply(action_id=action.pk)
    deadline = committed[0] + 60
    while (decision := gate.check(watched, IPS[1])).allowed:
        if time.perf_counter() > deadline:
            raise SystemExit("the gate still allows the key 60 s after the suspension was committed")
        time.sleep(POLL_SECONDS)  # leave the CPUs to the worker: the poll's resolution is well under 1 ms
    refused = time.perf_counter()
    assert decision.reason == "suspended", decision
    return (refused - committed[0]) * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--wide-keys", type=int, default=1000)
    parser.add_argument("--wide-rounds", type=int, default=10)
    parser.add_argument("--cluster", metavar="URL", help="a redis+cluster:// URL: measure the edge store on it")
    args = parser.parse_args()
    if args.cluster:
        os.environ["EDGE_STORE_URL"] = args.cluster

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from accounts import edge
    from accounts.edge.redis_cluster_store import is_cluster_url
    from accounts.tokens import generate_token, hash_token, prefix_of
    from enforcement.actors import Actor
    from tests.factories import UserFactory

    if not settings.EDGE_STORE_URL:
        raise SystemExit("REDIS_URL (or EDGE_STORE_URL, --cluster) must name a Redis: the bench measures the Redis "
                         "edge store.")
    print(f"Edge store {settings.EDGE_STORE_URL}, broker {settings.CELERY_BROKER_URL}, "
          f"database {settings.DATABASES['default']['NAME']}, {os.cpu_count()} CPU(s)")

    # 1. Throughput, in a namespace of its own.
    kind = edge.RedisClusterEdgeStore if is_cluster_url(settings.EDGE_STORE_URL) else edge.RedisEdgeStore
    store = kind(settings.EDGE_STORE_URL, namespace=f"bench-edge-{uuid.uuid4().hex[:8]}:")
    edge.use_store(store)
    tokens = [generate_token("secret") for _ in range(args.clients)]
    store.publish([edge.KeyRecord(hash_token(t), prefix_of(t), "active", 10**9, 10**9, 1) for t in tokens])
    refused = [generate_token("secret") for _ in range(args.clients)]  # a limit of 0: every request refused
    store.publish([edge.KeyRecord(hash_token(t), prefix_of(t), "active", 0, 10**9, 1) for t in refused])
    runs: dict[str, list[tuple[float, float, float]]] = {"gate": [], "refused": [], "evalsha": [], "ping": []}
    try:
        for _ in range(args.repeats):  # interleaved, so a change in the machine's load hits all four alike
            for kind, values in runs.items():
                values.append(throughput(kind, refused if kind == "refused" else tokens, args.seconds, store.client))
    finally:
        store.clear()
        edge.use_store(None)
    medians = {kind: [statistics.median(column) for column in zip(*values, strict=True)]
               for kind, values in runs.items()}
    gate_rate, refused_rate, evalsha_rate, ping_rate = (
        medians[kind][0] for kind in ("gate", "refused", "evalsha", "ping")
    )
    print(f"\n{args.clients} concurrent client processes, median of {args.repeats} runs of {args.seconds:g} s "
          "(client CPU and Redis server time per operation beside; ratios against the gate's passing requests):")
    for label, kind in (("gate.check, passing", "gate"), ("gate.check, refused+counted", "refused"),
                        ("raw EVALSHA 'return 1'", "evalsha"), ("raw PING", "ping")):
        rate, cpu, server = medians[kind]
        ratio = "" if kind == "gate" else f"   ratio {rate / gate_rate:.2f}x"
        print(f"  {label:<27} {rate:>9,.0f}/s   client {cpu:6.1f} us   server {server:5.1f} us{ratio}")
    limit = max(evalsha_rate, ping_rate)  # the faster raw round trip is the physical limit
    for label, rate in (("the gate", gate_rate), ("a counted refusal", refused_rate)):
        verdict = "within" if limit / rate <= 2 else "NOT within"
        print(f"  -> {label} is {verdict} 2x of one raw round trip per decision ({limit / rate:.2f}x)")

    # 2. Propagation, with a real worker.
    ensure_database(os.environ["DATABASE_URL"])
    call_command("migrate", verbosity=0)
    lead = Actor.for_user(UserFactory.create(username=f"bench-lead-{uuid.uuid4().hex[:8]}", role="tns_lead"))
    log_path = Path(settings.VAR_DIR) / "bench-gate-worker.log"
    with celery_worker(log_path):
        propagation_once(1, lead)  # warm up the worker's connections
        single = [propagation_once(1, lead) for _ in range(args.rounds)]
        wide = [propagation_once(args.wide_keys, lead) for _ in range(args.wide_rounds)]
    print("\naction_apply commit -> gate refuses (celery -A config worker --concurrency=2, "
          f"DB_CONN_MAX_AGE={os.environ.get('DB_CONN_MAX_AGE', '60')}):")
    for label, values in ((f"1 key, {args.rounds} rounds", single),
                          (f"{args.wide_keys} keys (last one), {args.wide_rounds} rounds", wide)):
        print(f"  {label:<32} p50 {statistics.median(values):7.1f} ms   p99 {percentile(values, 0.99):7.1f} ms   "
              f"max {max(values):7.1f} ms")
    print(f"(worker log: {log_path})")


if __name__ == "__main__":
    main()
