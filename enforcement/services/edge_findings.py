"""What the edge saw, made violations: sustained rate abuse and server keys in web pages report themselves.

The gate counts each key's rate-limited refusals per window and remembers the web origins a secret or
restricted key was presented from (``accounts.edge``: the edge records, enforcement reads). Here they become
reports under the reserved source ``gate``, each with an external id naming what it is about, so a run that
is repeated, late or restarted reports nothing twice:

- ``rate:<prefix>:<window start, ms>``: rate-limit-overuse, a key refused more than ``EDGE_ABUSE_REFUSALS``
  times in one window of ``EDGE_ABUSE_WINDOW_SECONDS``; reported as soon as it is so, even while the window runs
  (the evidence then says how many so far).
- ``sustained:<prefix>:<first window of the run, ms>``: sustained-rate-abuse, over that in every complete window
  for ``EDGE_SUSTAINED_MINUTES`` in a row; once per run. A run is reported only while the window before it (not
  over) is still kept, so a run longer than the store keeps never looks like a new one.
- ``exposure:<prefix>:<digest of the origin>``: key-exposure, once per key and origin.

The ladder and the rules decide what follows, as for any report.
"""

import hashlib
import ipaddress
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from accounts import edge
from accounts.models import APIKey
from enforcement.actors import REPORT_VIOLATION, Actor
from enforcement.errors import ServiceError
from enforcement.models import Violation
from enforcement.services.sources import source_for_report
from enforcement.services.violations import violation_report

log = logging.getLogger(__name__)

GATE_SOURCE = "gate"
TOP_ADDRESSES_IN_EVIDENCE = 10
KEY_LABELS = {"secret": "secret key", "restricted": "restricted key"}


@dataclass
class EdgeFindings:
    """What one run reported: the new violations, the findings reported before, and the reports refused."""

    reported: list[Violation] = field(default_factory=list)
    known: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Finding:
    rule: str
    key: APIKey
    external_id: str
    observed_at: datetime
    detail: object  # what the summary and evidence are written from, once the finding is known to be new


def sustained_runs(over: list[bool], *, length: int) -> list[int]:
    """Where each run of ``length`` windows over the threshold begins, in complete windows oldest first; only a
    run whose window before it is among them (and so known not to be over) counts, so no run is seen twice."""
    starts, run = [], 0
    for index, is_over in enumerate(over):
        run = run + 1 if is_over else 0
        if run == length and index >= length:
            starts.append(index - length + 1)
    return starts


def edge_findings_report(*, actor: Actor, now: datetime | None = None) -> EdgeFindings:
    """Report what the edge counted and saw that is not reported yet. Raises ``accounts.edge.EdgeUnavailable``
    when the edge store cannot be read (nothing is reported then; the next run catches up)."""
    actor.require(REPORT_VIOLATION, "You may not report violations.")
    source_for_report(actor=actor, name=GATE_SOURCE)  # reserved to the system: anyone else is refused here
    now = now or timezone.now()
    now_ms = int(now.timestamp() * 1000)
    store = edge.get_store()
    windows = edge.refusal_windows()
    starts = windows.starts(now_ms)
    counts = {start: store.refusal_counts(start) for start in starts}
    threshold = settings.EDGE_ABUSE_REFUSALS
    over = {start: {sha for sha, n in by_key.items() if n > threshold} for start, by_key in counts.items()}
    sightings = store.browser_sightings()
    hashes = set().union(*over.values(), (s.token_sha256 for s in sightings))
    keys = {key.token_sha256: key for key in APIKey.objects.filter(token_sha256__in=hashes).select_related("account")}

    findings: list[_Finding] = []
    for start in starts:
        for sha in sorted(over[start] & keys.keys()):
            findings.append(_Finding("rate-limit-overuse", keys[sha], f"rate:{keys[sha].prefix}:{start}",
                                     min(now, _at(start + windows.length_ms)), (start, counts[start][sha])))
    complete = starts[:-1]  # the current window is still running
    for sha in sorted(set().union(*over.values()) & keys.keys()):
        for first in sustained_runs([sha in over[start] for start in complete], length=windows.sustained):
            run = complete[first:first + windows.sustained]
            findings.append(_Finding("sustained-rate-abuse", keys[sha], f"sustained:{keys[sha].prefix}:{run[0]}",
                                     _at(run[-1] + windows.length_ms), [(s, counts[s][sha]) for s in run]))
    for sighting in sightings:
        key = keys.get(sighting.token_sha256)
        if key is not None and key.kind in KEY_LABELS:
            digest = hashlib.sha256(sighting.origin.encode()).hexdigest()[:32]
            findings.append(_Finding("key-exposure", key, f"exposure:{key.prefix}:{digest}",
                                     _at(sighting.first_seen_ms), sighting))

    known = set(Violation.objects.filter(
        source=GATE_SOURCE, external_id__in=[f.external_id for f in findings]
    ).values_list("external_id", flat=True))
    result = EdgeFindings(known=sum(f.external_id in known for f in findings))
    for finding in findings:
        if finding.external_id in known:
            continue
        summary, evidence = _WRITERS[finding.rule](finding, store=store, windows=windows, threshold=threshold)
        try:
            report = violation_report(
                actor=actor, account=finding.key.account, rule=finding.rule, source=GATE_SOURCE,
                external_id=finding.external_id, summary=summary, api_key=finding.key,
                observed_at=finding.observed_at, evidence=evidence,
            )
        except ServiceError as exc:  # e.g. the rule was switched off: the others are still reported
            log.warning("the edge's %s finding %s was not reported: %s", finding.rule, finding.external_id, exc)
            result.failed += 1
            continue
        if report.created:
            result.reported.append(report.violation)
        else:
            result.known += 1
    return result


# --------------------------------------------------------------------------- what each finding says


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _when(ms: int) -> str:
    return f"{_at(ms):%Y-%m-%d %H:%M} UTC"


def _duration(seconds: int) -> str:
    if seconds % 60:
        return f"{seconds}-second"
    return f"{seconds // 60}-minute"


def _limits(key: APIKey) -> dict:
    return {"per_key_per_minute": key.rate_limit_per_minute, "per_address_per_minute": key.ip_rate_limit_per_minute}


def _address(address: str) -> str:
    """An address as the per-IP buckets group it: an IPv4 address, an IPv6 network (``2001:db8:1:2::/64``)."""
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return address  # not an address: redaction still looks at it
    return str(network) if network.version == 6 else str(network.network_address)


def _top_addresses(store, key: APIKey, start: int) -> list[dict]:
    top = store.refused_addresses(key.token_sha256, start, limit=TOP_ADDRESSES_IN_EVIDENCE)
    return [{"address": _address(address), "refusals": count} for address, count in top]


def _rate_overuse(finding: _Finding, *, store, windows, threshold: int) -> tuple[str, dict]:
    start, refusals = finding.detail
    key, end = finding.key, start + windows.length_ms
    running = finding.observed_at < _at(end)
    seconds = windows.length_ms // 1000
    summary = (
        f"Key {key.prefix} was refused {refusals} times{' so far' if running else ''} for going over its rate "
        f"limits ({key.rate_limit_per_minute}/min per key, {key.ip_rate_limit_per_minute}/min per address) in the "
        f"{_duration(seconds)} window from {_when(start)}; more than {threshold} in a window is overuse."
    )
    evidence = {
        "key_prefix": key.prefix, "refusals": refusals, "threshold": threshold,
        "window_start": _at(start).isoformat(), "window_end": _at(end).isoformat(), "window_seconds": seconds,
        "window_complete": not running, "limits": _limits(key), "top_addresses": _top_addresses(store, key, start),
    }
    return summary, evidence


def _sustained_abuse(finding: _Finding, *, store, windows, threshold: int) -> tuple[str, dict]:
    run, key = finding.detail, finding.key
    seconds = windows.length_ms // 1000
    first, last = run[0][0], run[-1][0]
    total = sum(count for _, count in run)
    summary = (
        f"Key {key.prefix} was refused more than {threshold} times in every {_duration(seconds)} window for "
        f"{len(run) * seconds // 60} minutes in a row, from {_when(first)} to {_when(last + windows.length_ms)} "
        f"({total} refusals in all): sustained traffic over its rate limits ({key.rate_limit_per_minute}/min per "
        f"key, {key.ip_rate_limit_per_minute}/min per address)."
    )
    evidence = {
        "key_prefix": key.prefix, "refusals": total, "threshold": threshold, "window_seconds": seconds,
        "sustained_minutes": settings.EDGE_SUSTAINED_MINUTES, "run_start": _at(first).isoformat(),
        "run_end": _at(last + windows.length_ms).isoformat(),
        "windows": [{"start": _at(start).isoformat(), "refusals": count} for start, count in run],
        "limits": _limits(key), "top_addresses": _top_addresses(store, key, last),
    }
    return summary, evidence


def _key_exposure(finding: _Finding, *, store, windows, threshold: int) -> tuple[str, dict]:
    sighting, key = finding.detail, finding.key
    label = KEY_LABELS[key.kind]
    refused = settings.EDGE_BROWSER_SECRET == "refuse"
    requests = f"{sighting.requests} request{'s' if sighting.requests != 1 else ''}"
    summary = (
        f"The {label} {key.prefix} was sent from a web page at {sighting.origin} (first seen "
        f"{_when(sighting.first_seen_ms)}, last seen {_when(sighting.last_seen_ms)}, {requests}). Anyone who "
        f"opens that page can read a key sent from it. Rotate it: create a new {label}, use it only on your "
        f"servers, then delete {key.prefix}; in web pages use a publishable key (pk_live_)."
        + (" Our edge refuses this key from web pages." if refused else "")
    )
    evidence = {
        "key_prefix": key.prefix, "key_kind": key.kind, "origin": sighting.origin,
        "first_seen": _at(sighting.first_seen_ms).isoformat(), "last_seen": _at(sighting.last_seen_ms).isoformat(),
        "requests_seen": sighting.requests, "refused_at_the_edge": refused,
    }
    return summary, evidence


_WRITERS = {
    "rate-limit-overuse": _rate_overuse,
    "sustained-rate-abuse": _sustained_abuse,
    "key-exposure": _key_exposure,
}
