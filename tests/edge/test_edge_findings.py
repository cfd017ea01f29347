"""The edge as a detector: what the gate counted and saw becomes violations under the source ``gate``, once
each, whatever the backend, however often the task runs; the ladder and the rules decide what follows."""

import json
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from accounts import edge, gate
from enforcement import services, tasks
from enforcement.actors import Actor
from enforcement.errors import Forbidden
from enforcement.models import Violation
from enforcement.services.edge_findings import sustained_runs
from tests.edge.test_gate import NOW
from tests.factories import APIKeyFactory, token_client

pytestmark = pytest.mark.django_db

GATE = Actor.system("gate")
MINUTE = 60_000
WINDOW = 10 * MINUTE  # EDGE_ABUSE_WINDOW_SECONDS' default; NOW starts a window
ADDRESS = "198.51.100.7"
SHOP = "https://shop.example.com"


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def report(ms: int) -> services.EdgeFindings:
    """One run of the periodic task, at ``ms``."""
    return services.edge_findings_report(actor=GATE, now=at(ms))


def hammer(key, times: int, *, ms: int, address: str = ADDRESS) -> None:
    for i in range(times):
        gate.check(key.token, address, now_ms=ms + i)


def gate_violations(rule: str | None = None):
    violations = Violation.objects.filter(source="gate").select_related("rule", "api_key").order_by("pk")
    return violations.filter(rule__code=rule) if rule else violations


def reopened(store: edge.EdgeStore, settings) -> edge.EdgeStore:
    """The same backend as a new process sees it (a restarted worker)."""
    if isinstance(store, edge.RedisEdgeStore):
        return type(store)(store.url, namespace=store.namespace)
    return edge.SQLiteEdgeStore(store.path)


@pytest.fixture
def slow_key(account, store):
    """A secret key of 5 requests a minute, published to the edge."""
    key = APIKeyFactory(account=account, kind="secret", base_rate_limit_per_minute=5)
    edge.publish_keys(key_ids=[key.pk])
    return key


@pytest.fixture
def threshold(settings):
    settings.EDGE_ABUSE_REFUSALS = 10
    return 10


def test_a_key_hammered_past_its_limit_is_reported_once_per_window(slow_key, threshold):
    hammer(slow_key, 5 + 8, ms=NOW)  # 8 refused: not more than 10
    assert report(NOW + 1000).reported == []
    hammer(slow_key, 5, ms=NOW + 2000)  # 13 refused: reported while the window runs
    first = report(NOW + 3000)
    assert [v.rule.code for v in first.reported] == ["rate-limit-overuse"]
    hammer(slow_key, 50, ms=NOW + 4000)
    assert report(NOW + 5000).reported == []  # the same window: already reported
    assert report(NOW + WINDOW + 1000).reported == []  # the window over: still the one report

    hammer(slow_key, 20, ms=NOW + WINDOW + 2000)  # the next window: 5 pass, 15 refused
    assert [v.rule.code for v in report(NOW + WINDOW + 3000).reported] == ["rate-limit-overuse"]
    hammer(slow_key, 5 + 3, ms=NOW + 3 * WINDOW)  # a quiet window: 3 refused
    assert report(NOW + 4 * WINDOW).reported == []

    violations = list(gate_violations())
    assert [v.external_id for v in violations] == [f"rate:{slow_key.prefix}:{NOW}",
                                                   f"rate:{slow_key.prefix}:{NOW + WINDOW}"]
    violation = violations[0]
    assert (violation.api_key, violation.account, violation.severity) == (slow_key, slow_key.account, "low")
    assert (violation.reported_by, violation.reporter_kind, violation.source_trusted) == ("gate", "system", True)
    assert violation.observed_at == at(NOW + 3000)
    evidence = violation.evidence
    assert {k: evidence[k] for k in ("key_prefix", "refusals", "threshold", "window_seconds", "window_complete")} == {
        "key_prefix": slow_key.prefix, "refusals": 13, "threshold": 10, "window_seconds": 600,
        "window_complete": False,
    }
    assert (evidence["window_start"], evidence["window_end"]) == (at(NOW).isoformat(), at(NOW + WINDOW).isoformat())
    assert evidence["limits"] == {"per_key_per_minute": 5, "per_address_per_minute": 100}
    [top] = evidence["top_addresses"]
    assert top["refusals"] == 13 and top["address"].startswith("[IP 198.51.100.x ")  # pseudonymised
    assert ADDRESS not in json.dumps(evidence) and ADDRESS not in violation.summary
    assert slow_key.prefix in violation.summary and "13 times so far" in violation.summary
    assert violations[1].evidence["window_complete"] is False
    assert violations[1].evidence["refusals"] == 15


def test_a_window_reported_late_says_it_is_complete_and_masks_ipv6_networks(slow_key, threshold):
    hammer(slow_key, 5 + 12, ms=NOW, address="2001:db8:1:2::5")
    [violation] = report(NOW + WINDOW + 30_000).reported
    assert violation.evidence["window_complete"] is True and violation.observed_at == at(NOW + WINDOW)
    [top] = violation.evidence["top_addresses"]
    assert top["address"].startswith("[IP 2001:db8:1::/48 ") and top["address"].endswith("/64")
    assert "2001:db8:1:2" not in json.dumps(violation.evidence)
    assert "so far" not in violation.summary


def test_an_hour_over_the_limit_is_sustained_abuse_and_the_key_is_suspended_first(
    account, store, settings, django_capture_on_commit_callbacks
):
    """With one-minute windows, an hour over the limit in every one of them: sixty low-severity overuse reports
    (one a window), then one critical sustained-rate-abuse report, which act-first suspends at once."""
    settings.EDGE_ABUSE_WINDOW_SECONDS, settings.EDGE_SUSTAINED_MINUTES, settings.EDGE_ABUSE_REFUSALS = 60, 60, 3
    key = APIKeyFactory(account=account, kind="secret", base_rate_limit_per_minute=1)
    edge.publish_keys(key_ids=[key.pk])
    for minute in range(60):
        hammer(key, 6, ms=NOW + minute * MINUTE)  # one passes, five are refused
        with django_capture_on_commit_callbacks(execute=True):
            found = report(NOW + minute * MINUTE + 30_000)
        assert [v.rule.code for v in found.reported] == ["rate-limit-overuse"], minute

    with django_capture_on_commit_callbacks(execute=True):
        found = report(NOW + 60 * MINUTE + 1000)  # the sixtieth window is complete
    [sustained] = found.reported
    assert sustained.rule.code == "sustained-rate-abuse" and sustained.severity == "critical"
    assert sustained.external_id == f"sustained:{key.prefix}:{NOW}"
    assert sustained.observed_at == at(NOW + 60 * MINUTE)
    evidence = sustained.evidence
    assert (evidence["refusals"], evidence["threshold"], evidence["sustained_minutes"]) == (300, 3, 60)
    assert (evidence["run_start"], evidence["run_end"]) == (at(NOW).isoformat(), at(NOW + 60 * MINUTE).isoformat())
    assert [w["refusals"] for w in evidence["windows"]] == [5] * 60
    assert evidence["top_addresses"][0]["address"].startswith("[IP 198.51.100.x ")
    assert "60 minutes in a row" in sustained.summary
    assert gate_violations("rate-limit-overuse").count() == 60

    # The rules decide what follows: sustained abuse acts first, and the edge refuses the key.
    key.refresh_from_db()
    assert key.status == "suspended"
    assert sustained.case.actions.get().act_first
    assert gate.check(key.token, ADDRESS, now_ms=NOW + 61 * MINUTE).reason == "suspended"
    # Later runs, while the run is still kept and after, report it no more.
    for minute in (61, 62, 63, 64, 70, 200):
        assert report(NOW + minute * MINUTE).reported == [], minute
    assert gate_violations("sustained-rate-abuse").count() == 1


def test_an_interrupted_run_is_not_sustained(account, store, settings):
    settings.EDGE_ABUSE_WINDOW_SECONDS, settings.EDGE_SUSTAINED_MINUTES, settings.EDGE_ABUSE_REFUSALS = 60, 10, 3
    key = APIKeyFactory(account=account, kind="secret", base_rate_limit_per_minute=1)
    edge.publish_keys(key_ids=[key.pk])
    for minute in [*range(0, 9), *range(10, 19)]:  # nine minutes, a quiet one, nine more
        hammer(key, 6, ms=NOW + minute * MINUTE)
        report(NOW + minute * MINUTE + 30_000)
    report(NOW + 19 * MINUTE + 1000)
    assert gate_violations("rate-limit-overuse").count() == 18
    assert not gate_violations("sustained-rate-abuse").exists()


def test_sustained_runs_are_seen_once_and_only_with_their_start():
    over, under = True, False
    assert sustained_runs([under, over, over, over], length=3) == [1]
    assert sustained_runs([over, over, over, over], length=3) == []  # began before what is kept: unknown start
    assert sustained_runs([under, over, over, over, over, over], length=3) == [1]  # a long run: once
    assert sustained_runs([under, over, over, under, over, over, over], length=3) == [4]
    assert sustained_runs([under, over, under, over, over, over, under, over, over, over], length=3) == [3, 7]


def test_a_secret_key_from_a_web_page_is_reported_once_per_key_and_origin(account, keys, store):
    edge.publish_keys(account_id=account.pk)
    publishable, secret, restricted = keys
    assert gate.check(secret.token, ADDRESS, origin=SHOP, now_ms=NOW).reason == "ok"  # report, not refuse
    gate.check(secret.token, ADDRESS, origin=SHOP, now_ms=NOW + MINUTE)
    gate.check(publishable.token, ADDRESS, origin=SHOP, now_ms=NOW)  # where it belongs

    [violation] = report(NOW + 2 * MINUTE).reported
    assert (violation.rule.code, violation.api_key, violation.severity) == ("key-exposure", secret, "medium")
    assert violation.external_id.startswith(f"exposure:{secret.prefix}:")
    assert violation.evidence == {
        "key_prefix": secret.prefix, "key_kind": "secret", "origin": SHOP,
        "first_seen": at(NOW).isoformat(), "last_seen": at(NOW + MINUTE).isoformat(), "requests_seen": 2,
        "refused_at_the_edge": False,
    }
    assert violation.observed_at == at(NOW)
    summary = violation.summary
    assert f"secret key {secret.prefix} was sent from a web page at {SHOP}" in summary
    assert "Rotate it: create a new secret key" in summary and f"then delete {secret.prefix}" in summary
    assert secret.token not in summary

    gate.check(secret.token, ADDRESS, origin=SHOP, now_ms=NOW + 3 * MINUTE)
    assert report(NOW + 4 * MINUTE).reported == []  # the same key and origin: once
    gate.check(secret.token, ADDRESS, origin="https://blog.example.com", now_ms=NOW + 5 * MINUTE)
    gate.check(restricted.token, ADDRESS, origin=SHOP, now_ms=NOW + 5 * MINUTE)
    new = report(NOW + 6 * MINUTE).reported
    assert sorted((v.api_key.prefix, v.evidence["origin"]) for v in new) == sorted(
        [(secret.prefix, "https://blog.example.com"), (restricted.prefix, SHOP)]
    )
    assert "restricted key" in next(v for v in new if v.api_key == restricted).summary


def test_under_refuse_the_gate_refuses_it_and_the_report_says_so(account, keys, store, settings):
    settings.EDGE_BROWSER_SECRET = "refuse"
    edge.publish_keys(account_id=account.pk)
    publishable, _, restricted = keys
    decision = gate.check(restricted.token, ADDRESS, origin="http://localhost:3000", now_ms=NOW)
    assert decision == gate.Decision(False, "wrong_key_type", 0, 0, 0)
    assert gate.check(restricted.token, ADDRESS, now_ms=NOW).allowed  # from a server it works
    assert gate.check(publishable.token, ADDRESS, origin="http://localhost:3000", now_ms=NOW).allowed
    [violation] = report(NOW + MINUTE).reported
    assert violation.evidence["refused_at_the_edge"] is True and violation.evidence["key_kind"] == "restricted"
    assert "Our edge refuses this key from web pages." in violation.summary


def test_the_customers_notice_says_which_key_where_and_to_rotate_it(account, keys, store, as_lead, mailoutbox,
                                                                     django_capture_on_commit_callbacks):
    edge.publish_keys(account_id=account.pk)
    secret = keys[1]
    gate.check(secret.token, ADDRESS, origin=SHOP, now_ms=NOW)
    [violation] = report(NOW + MINUTE).reported
    # The ladder's advice for a medium exposure is a warning; a lead sends it.
    assert services.recommendation_for(violation.case).kind == "warning"
    with django_capture_on_commit_callbacks(execute=True):
        services.action_propose(actor=as_lead, case_id=violation.case_id, kind="warning", reason="key in a page")
    [notice] = [m for m in mailoutbox if m.to == [account.email]]
    text = " ".join(notice.body.split())
    assert f"The secret key {secret.prefix} was sent from a web page at {SHOP}" in text
    assert "Rotate it: create a new secret key, use it only on your servers" in text
    assert secret.token not in notice.body and secret.token_sha256 not in notice.body


def test_replays_and_restarts_double_nothing(account, keys, slow_key, store, threshold, settings):
    edge.publish_keys(account_id=account.pk)
    hammer(slow_key, 5 + 11, ms=NOW)
    hammer(slow_key, 5 + 11, ms=NOW + WINDOW)
    gate.check(keys[1].token, ADDRESS, origin=SHOP, now_ms=NOW)
    first = report(NOW + WINDOW + MINUTE)
    assert len(first.reported) == 3 and first.known == 0
    again = report(NOW + WINDOW + MINUTE)
    assert (again.reported, again.known) == ([], 3)
    edge.use_store(reopened(store, settings))  # a restarted worker, reading the same store
    assert report(NOW + WINDOW + 2 * MINUTE).reported == []
    assert tasks.report_edge_findings.apply().get()["reported"] == 0  # the beat task itself, on the real clock
    assert gate_violations().count() == 3


def test_the_beat_task_reports_on_the_real_clock(slow_key, threshold):
    hammer_now = [gate.check(slow_key.token, ADDRESS) for _ in range(5 + 11)]
    assert sum(not d.allowed for d in hammer_now) == 11
    outcome = tasks.report_edge_findings.apply().get()
    # Straddling a window boundary could split the refusals; then neither half may be over the threshold.
    assert outcome["reported"] in (0, 1) and outcome["failed"] == 0
    assert outcome["reported"] == gate_violations("rate-limit-overuse").count()
    assert tasks.report_edge_findings.apply().get()["reported"] == 0


def test_the_task_waits_out_an_unreachable_edge_store(db):
    edge.use_store(edge.RedisEdgeStore("redis://127.0.0.1:1/0"))  # nothing listens on port 1
    outcome = tasks.report_edge_findings.apply().get()
    assert "Redis" in outcome["error"]
    assert not gate_violations().exists()


def test_a_switched_off_rule_leaves_the_others_reported(slow_key, keys, store, threshold):
    from enforcement.models import Rule

    Rule.objects.filter(code="rate-limit-overuse").update(is_active=False)
    edge.publish_keys(key_ids=[keys[1].pk])
    hammer(slow_key, 5 + 11, ms=NOW)
    gate.check(keys[1].token, ADDRESS, origin=SHOP, now_ms=NOW)
    found = report(NOW + MINUTE)
    assert [v.rule.code for v in found.reported] == ["key-exposure"] and found.failed == 1


def test_only_the_system_reports_under_the_gate_source(slow_key, threshold, as_lead, detector_token):
    hammer(slow_key, 5 + 11, ms=NOW)
    for actor in (as_lead, Actor.for_token(detector_token)):
        with pytest.raises(Forbidden):
            services.edge_findings_report(actor=actor, now=at(NOW + MINUTE))
    assert not gate_violations().exists()


def test_gate_violations_are_listed_by_source_for_those_who_read_cases(slow_key, threshold, detector_token):
    hammer(slow_key, 5 + 11, ms=NOW)
    report(NOW + MINUTE)
    services.violation_report(actor=Actor.for_token(detector_token), account=slow_key.account,
                              rule="secrets-in-events", source="ids", external_id="evt-1", summary="a card number")
    reader = token_client("reader", ["cases:read"])
    body = reader.get("/api/v1/violations/", {"source": "gate"}).json()
    assert [(v["source"], v["rule"], v["api_key"]) for v in body["results"]] == [
        ("gate", "rate-limit-overuse", slow_key.prefix)
    ]
    assert body["results"][0]["reported_by"] == "gate"
    # A reporting token sees only its own reports: none of the gate's.
    detector = APIClient()
    detector.credentials(HTTP_AUTHORIZATION=f"Bearer {detector_token.raw}")
    assert detector.get("/api/v1/violations/", {"source": "gate"}).json()["results"] == []
    assert [v["source"] for v in detector.get("/api/v1/violations/").json()["results"]] == ["ids"]
