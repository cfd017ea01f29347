"""Writing new reports: each violation with its ``violation.reported`` audit event and its count in its source's
tally, in the caller's transaction.

On PostgreSQL that is one statement, whatever the number of reports: the violations go in as one JSON
document (``lib.bulk``), and data-modifying ``WITH`` queries write, from the rows just inserted, one audit
event each (its ``after`` built there from the row, its rule's code and its key's prefix) and one upsert per
source into this connection's tally shard. A report is then one round trip where it was three, and no audit
event or tally row is built in Python. Elsewhere (SQLite, the embedded default) the same rows are written by
three ``bulk_create``-like calls.
"""

import functools
import json
from collections.abc import Sequence

from django.db import connections, router
from django.utils import timezone

from accounts.models import APIKey
from enforcement.actors import Actor
from enforcement.audit import audit_row
from enforcement.models import AuditEvent, Rule, SourceTally, Violation
from enforcement.services.detectors import TALLY_FIELDS, tally_reports, tally_shard
from lib.bulk import bulk_insert, insert_statement, mark_saved, row_documents

REPORTED = "violation.reported"


def reported_after(violation: Violation) -> dict:
    """The ``after`` of a violation's ``violation.reported`` event (the statement below builds the same)."""
    return {"rule": violation.rule.code, "severity": violation.severity, "source": violation.source,
            "external_id": violation.external_id, "api_key": violation.api_key.prefix if violation.api_key else None}


@functools.cache
def _statement(alias: str) -> str:
    connection = connections[alias]
    quote = connection.ops.quote_name
    audit, tally = quote(AuditEvent._meta.db_table), quote(SourceTally._meta.db_table)
    rules, keys = quote(Rule._meta.db_table), quote(APIKey._meta.db_table)
    violations = insert_statement(
        Violation, connection,
        returning=["account_id", "case_id", "rule_id", "api_key_id", "severity", "source", "external_id"],
    )
    counted = ", ".join(TALLY_FIELDS)
    counts = ", ".join("count(*)" if field == "reports" else "0" for field in TALLY_FIELDS)  # new: none decided
    return (
        f"WITH v AS ({violations}), "
        f"a AS (INSERT INTO {audit} (created_at, actor_type, actor_user_id, actor_token_id, actor_label, verb, "
        f"target_type, target_id, case_id, account_id, before, after, note) "
        f"SELECT %s, %s, %s, %s, %s, '{REPORTED}', 'violation', v.id::text, v.case_id, v.account_id, NULL, "
        f"jsonb_build_object('rule', rule.code, 'severity', v.severity, 'source', v.source, "
        f"'external_id', v.external_id, 'api_key', key.prefix), '' "
        f"FROM v JOIN {rules} rule ON rule.id = v.rule_id LEFT JOIN {keys} key ON key.id = v.api_key_id "
        f"ORDER BY v.id), "
        f"t AS (INSERT INTO {tally} (source, shard, {counted}) "
        f"SELECT v.source, %s, {counts} FROM v GROUP BY v.source ORDER BY v.source "
        f"ON CONFLICT (source, shard) DO UPDATE SET reports = {tally}.reports + excluded.reports) "
        f"SELECT id, source, external_id FROM v"
    )


def reports_insert(*, actor: Actor, violations: Sequence[Violation]) -> None:
    """Insert ``violations`` (new, unsaved; their rule and key loaded) with their audit events and tally
    counts; each object gets its primary key. The caller holds their accounts' and cases' locks."""
    if not violations:
        return
    connection = connections[router.db_for_write(Violation)]
    assert connection.in_atomic_block, "audit events belong to a transaction"
    if connection.vendor == "postgresql":
        _insert_in_one_statement(actor, violations, connection)
    else:
        _insert_apart(actor, violations)


def _insert_in_one_statement(actor: Actor, violations: Sequence[Violation], connection) -> None:
    fields = actor.audit_fields()
    user, token = fields["actor_user"], fields["actor_token"]
    with connection.cursor() as cursor:
        cursor.execute(_statement(connection.alias), [
            json.dumps(row_documents(Violation, violations, connection)),
            timezone.now(), fields["actor_type"], user.pk if user else None, token.pk if token else None,
            fields["actor_label"], tally_shard(),
        ])
        ids = {(source, external_id): pk for pk, source, external_id in cursor.fetchall()}
    for violation in violations:
        mark_saved(violation, ids[violation.source, violation.external_id], connection.alias)


def _insert_apart(actor: Actor, violations: Sequence[Violation]) -> None:
    bulk_insert(Violation, violations)
    AuditEvent.objects.bulk_create([
        audit_row(actor=actor, verb=REPORTED, target=v, case=v.case, account=v.account, after=reported_after(v))
        for v in violations
    ])
    tally_reports([v.source for v in violations])
