"""The enforcement workflow: one function per verb, called by the admin, the API, tasks and commands.

Each write takes a required ``actor`` and checks what it may do, is atomic, locks the rows it changes in
the one lock order (``locks``), checks the transition against ``enforcement.transitions``, returns early
when there is nothing to do, writes its ``AuditEvent`` in the same transaction, and enqueues follow-up
work on commit. Preconditions are ``check_*`` functions beside their verbs: the services raise what they
return, the admin asks them before it shows a button.

Modules by aggregate: ``cases``, ``violations`` (single and batch reports), ``actions``, ``key_state``,
``appeals``, ``sweep``, ``rules``, ``inventory`` (accounts and keys), ``tokens`` (service tokens),
``recommendations`` (the ladder's advice), ``simulation`` (a proposed ladder replayed over past decisions),
``edge_findings`` (what the gate counted and saw, reported), ``saved_views`` (the queue's saved views and
remembered filters),
``locks``. Import the verbs from here.
"""

from enforcement.services.actions import (
    ACTION_FIELDS,
    act_first_suspend,
    action_apply,
    action_approve,
    action_cancel,
    action_confirm,
    action_expire,
    action_propose,
    action_record_failure,
    action_retry,
    action_revert,
    check_approve,
    check_cancel,
    check_confirm,
    check_retry,
    check_revert,
    covering_action,
    notice_preview,
)
from enforcement.services.appeals import appeal_decide, appeal_submit, check_appeal_decide, check_appeal_submit
from enforcement.services.cases import CASE_FIELDS, case_assign, case_comment, case_refresh, case_resolve
from enforcement.services.detectors import detectors_recheck
from enforcement.services.edge_findings import GATE_SOURCE, EdgeFindings, edge_findings_report
from enforcement.services.inventory import account_get, account_upsert, key_revoke, key_upsert
from enforcement.services.key_state import (
    account_keys_recompute,
    all_keys_recompute,
    restricting_actions,
    restrictions_for,
    restricts_key,
)
from enforcement.services.recommendations import recommendation_for, strikes_for, strikes_for_cases
from enforcement.services.rollups import metrics_rollup, rollup_day
from enforcement.services.rules import RULE_FIELDS, rule_save
from enforcement.services.saved_views import (
    saved_view_delete,
    saved_view_save,
    saved_view_share,
    timeline_filters_save,
    timeline_hidden,
    visible_views,
)
from enforcement.services.simulation import (
    MAX_STRIKE_WINDOW_DAYS,
    POLICY_FIELDS,
    SIMULATION_DEFAULT_DAYS,
    SIMULATION_MAX_DAYS,
    Simulation,
    check_simulate,
    policy_simulate,
)
from enforcement.services.sources import RESERVED_SOURCES, check_source, source_for_report, source_reassign
from enforcement.services.sweep import SweepReport, escalate_overdue_warnings, sweep
from enforcement.services.tokens import service_token_create, service_token_revoke
from enforcement.services.violations import ReportResult, violation_dismiss, violation_report, violation_report_batch

__all__ = [
    "ACTION_FIELDS", "CASE_FIELDS", "GATE_SOURCE", "MAX_STRIKE_WINDOW_DAYS", "POLICY_FIELDS", "RESERVED_SOURCES",
    "RULE_FIELDS", "EdgeFindings", "ReportResult", "SIMULATION_DEFAULT_DAYS", "SIMULATION_MAX_DAYS", "Simulation",
    "SweepReport", "check_simulate", "policy_simulate",
    "check_source", "source_for_report", "source_reassign",
    "account_get", "account_keys_recompute", "account_upsert", "act_first_suspend", "action_apply",
    "action_approve", "action_cancel", "action_confirm", "action_expire", "action_propose",
    "action_record_failure", "action_retry", "action_revert", "all_keys_recompute", "appeal_decide",
    "appeal_submit", "case_assign", "case_comment", "case_refresh", "case_resolve", "check_appeal_decide",
    "check_appeal_submit",
    "check_approve", "check_cancel", "check_confirm", "check_retry", "check_revert", "covering_action",
    "detectors_recheck", "edge_findings_report", "metrics_rollup", "rollup_day",
    "escalate_overdue_warnings", "notice_preview", "key_revoke", "key_upsert", "recommendation_for",
    "restricting_actions", "restrictions_for", "restricts_key", "rule_save", "saved_view_delete", "saved_view_save",
    "saved_view_share", "timeline_filters_save", "timeline_hidden", "visible_views", "service_token_create",
    "service_token_revoke", "strikes_for",
    "strikes_for_cases", "sweep", "violation_dismiss", "violation_report", "violation_report_batch",
]
