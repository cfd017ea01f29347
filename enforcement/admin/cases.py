"""The case queue (filters, search, bulk assignment and proposals), the case page with the whole story
on one timeline, and its case-level buttons: propose, assign, comment, resolve."""

import json
from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from accounts.models import APIKey
from accounts.search import matching_account_ids
from enforcement import services
from enforcement.actors import DECIDE_APPEAL, PROPOSE_ACTION, WORK_CASE
from enforcement.admin import queue
from enforcement.admin.accounts import gate_report_chart
from enforcement.admin.base import (
    MAX_BULK,
    WorkflowAdmin,
    admin_context,
    call_service,
    case_number,
    error_text,
    form_error_text,
    next_url,
    post_only,
    require,
)
from enforcement.admin.buttons import action_verbs, actor_for, approval_note
from enforcement.admin.display import (
    account_link,
    case_url,
    severity_badge,
    shown_notice,
    sla_html,
    sla_state,
    status_badge,
)
from enforcement.admin.filters import (
    AppealedFilter,
    AssigneeFilter,
    AwaitingFilter,
    CaseStatusFilter,
    OverdueFilter,
    RuleFilter,
    SeverityFilter,
    assignable_staff,
)
from enforcement.admin.forms import AssignForm, CommentForm, ProposeForm, ResolveForm
from enforcement.errors import Conflict, ServiceError
from enforcement.models import (
    SEVERITY_RANK,
    ActionKind,
    ActionStatus,
    AuditEvent,
    Case,
    EnforcementAction,
    Notification,
    Severity,
    Violation,
)
from enforcement.rights import requires_approval
from enforcement.selectors import (
    CASE_QUEUE_ORDERING,
    CLOSED_CASES_ORDERING,
    account_standing,
    case_detail_queryset,
    case_timeline,
)
from enforcement.statements import case_statements, restrictive_applied

# --------------------------------------------------------------------------- the case queue


class CaseChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        attach_rule_counts(self.result_list)


class QueueOnlyChangeList(CaseChangeList):
    """The queue's filters, search and sort as a query, without fetching or counting a page
    (``queue.queue_queryset``: a view's neighbours and counts)."""

    def get_results(self, request):
        self.result_count, self.full_result_count, self.result_list = 0, None, []
        self.show_all = self.can_show_all = self.multi_page = False
        self.show_full_result_count = self.show_admin_actions = False


def attach_rule_counts(cases: list[Case]) -> None:
    """One query for the rules of every case on the page (not one per row)."""
    counts: dict[int, list[tuple[str, int]]] = defaultdict(list)
    rows = (
        Violation.objects.filter(case_id__in=[case.pk for case in cases])
        .values_list("case_id", "rule__code")
        .annotate(n=Count("id"))
        .order_by("case_id", "rule__code")
    )
    for case_id, code, n in rows:
        counts[case_id].append((code, n))
    for case in cases:
        case.rule_counts = counts.get(case.pk, [])


@admin.register(Case)
class CaseAdmin(WorkflowAdmin):
    list_display = ("case_number", "severity_col", "status_col", "account_col", "rules_col", "assignee_col",
                    "sla_col", "opened_col")
    list_display_links = ("case_number",)
    list_filter = (CaseStatusFilter, SeverityFilter, RuleFilter, AssigneeFilter, OverdueFilter, AwaitingFilter,
                   AppealedFilter)
    list_select_related = ("account", "assignee")
    ordering = CASE_QUEUE_ORDERING
    search_fields = ("account__public_id",)
    search_help_text = ("Account id, name or email (their first letters, any case), a key prefix's start (sk_live_...) "
                        "or a case number.")
    actions = ["assign_to_me", "assign_to", "propose_recommendation"]
    change_list_template = "admin/enforcement/case/change_list.html"

    def get_changelist(self, request, **kwargs):
        return QueueOnlyChangeList if getattr(request, "_queue_only", False) else CaseChangeList

    def get_ordering(self, request):
        """Closed cases have no review deadline: most recently closed first (``case_closed_idx``)."""
        if request.GET.get(CaseStatusFilter.parameter_name) == Case.Status.CLOSED:
            return CLOSED_CASES_ORDERING
        return super().get_ordering(request)

    def changelist_view(self, request, extra_context=None):
        actor = actor_for(request)
        query = queue.clean_query(self, request.GET.urlencode())
        views = list(services.visible_views(request.user))
        extra = {
            "title": "Case queue", "may_work": actor.can(WORK_CASE), "view_query": query,
            "saved_views": views, "current_view": queue.current_view(views, query), **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def search_condition(self, term):
        """The term resolved to account ids first (one small query on the accounts, ``accounts.search``), then
        the cases of those accounts by the indexed account column; or a case by its number."""
        condition = Q(account_id__in=matching_account_ids(term))
        if (number := case_number(term)) is not None:
            condition |= Q(pk=number)
        return condition

    # -- columns (the admin instance is shared between requests: nothing per request is kept on it)
    @admin.display(description="Case", ordering="pk")
    def case_number(self, case):
        return f"#{case.pk}"

    @admin.display(description="Severity", ordering="severity_rank")
    def severity_col(self, case):
        return severity_badge(case.severity)

    @admin.display(description="Status", ordering="status")
    def status_col(self, case):
        flags = mark_safe(' <span class="flag flag-review">act-first review</span>') if case.needs_lead_review else ""
        return format_html("{}{}", status_badge(case.status, case.get_status_display()), flags)

    @admin.display(description="Account", ordering="account__public_id")
    def account_col(self, case):
        return format_html("{}<div class=\"quiet\">{}</div>", account_link(case.account), case.account.name)

    @admin.display(description="Rules")
    def rules_col(self, case):
        counts = getattr(case, "rule_counts", [])
        return format_html_join(
            " ", '<span class="rule">{}{}</span>',
            ((code, f" \u00d7{n}" if n > 1 else "") for code, n in counts),
        ) or "-"

    @admin.display(description="Assignee", ordering="assignee__username")
    def assignee_col(self, case):
        if case.assignee_id:
            return case.assignee.get_username()
        return mark_safe('<span class="quiet">unassigned</span>')

    @admin.display(description="Review SLA", ordering="review_due_at")
    def sla_col(self, case):
        return sla_html(case.review_due_at, now=timezone.now(), closed=case.status == Case.Status.CLOSED)

    @admin.display(description="Opened", ordering="opened_at")
    def opened_col(self, case):
        return f"{timesince(case.opened_at).split(',')[0]} ago"

    # -- bulk actions
    def _selected_ids(self, request, queryset) -> list[int] | None:
        ids = list(queryset.order_by().values_list("pk", flat=True)[: MAX_BULK + 1])
        if len(ids) > MAX_BULK:
            messages.error(request, f"Select at most {MAX_BULK} cases at a time.")
            return None
        return ids

    def _assign(self, request, ids: list[int], assignee_id: int | None) -> None:
        actor = actor_for(request)
        done, errors = 0, []
        for case_id in ids:
            try:
                services.case_assign(actor=actor, case_id=case_id, assignee_id=assignee_id)
                done += 1
            except ServiceError as exc:
                errors.append(f"#{case_id}: {error_text(exc)}")
        if done:
            messages.success(request, f"{done} case(s) assigned.")
        for error in errors[:10]:
            messages.error(request, error)

    def _confirm_page(self, request, template: str, *, title: str, ids: list[int], action: str, **context):
        """A bulk action's confirmation page: it posts the same action again, for exactly the cases it shows."""
        context = admin_context(
            self, request, title=title, count=len(ids), back_url=reverse("admin:enforcement_case_changelist"),
            hidden=[("action", action), ("select_across", "0"),
                    *((helpers.ACTION_CHECKBOX_NAME, case_id) for case_id in ids), *context.pop("hidden", [])],
            **context,
        )
        return TemplateResponse(request, template, context)

    @admin.action(description="Assign to me", permissions=["work_case"])
    def assign_to_me(self, request, queryset):
        ids = self._selected_ids(request, queryset)
        if ids is None:
            return None
        cases = list(Case.objects.filter(pk__in=ids).select_related("account", "assignee").order_by("pk"))
        if takeovers_unconfirmed(request, cases):
            held = held_by_others(request, cases)
            return self._confirm_page(
                request, "admin/enforcement/case/take_over.html", title="Take over cases", ids=ids,
                action="assign_to_me", held=held, free=len(cases) - len(held), hidden=holder_fields(held),
            )
        self._assign(request, ids, request.user.pk)
        return None

    @admin.action(description="Assign to...", permissions=["work_case"])
    def assign_to(self, request, queryset):
        ids = self._selected_ids(request, queryset)
        if ids is None:
            return None
        if "apply" in request.POST:
            raw = request.POST.get("assignee", "")
            if raw != "" and not raw.isdigit():
                messages.error(request, "Choose someone to assign the cases to.")
                return None
            self._assign(request, ids, int(raw) if raw else None)
            return None
        return self._confirm_page(
            request, "admin/enforcement/case/assign_intermediate.html", title="Assign cases", ids=ids,
            action="assign_to", hidden=[("apply", "1")], staff=assignable_staff(),
            cases=Case.objects.filter(pk__in=ids).select_related("account").order_by("review_due_at")[:50],
        )

    @admin.action(description="Propose the ladder's recommendation", permissions=["propose_action"])
    def propose_recommendation(self, request, queryset):
        """First a page of what would happen to each case; only its confirm button proposes."""
        ids = self._selected_ids(request, queryset)
        if ids is None:
            return None
        actor = actor_for(request)
        cases = list(Case.objects.filter(pk__in=ids).select_related("account").order_by("review_due_at", "pk"))
        if request.POST.get("confirm") == "yes":
            propose_confirmed(request, actor, cases, confirmed_kinds(request))
            return None
        now = timezone.now()
        rows = [{"case": case, **proposal_outlook(actor, case, now=now)} for case in cases]
        return self._confirm_page(
            request, "admin/enforcement/case/propose_confirm.html", title="Propose the ladder's recommendation",
            ids=[case.pk for case in cases], action="propose_recommendation", rows=rows,
            emailed=[row["case"].account.email for row in rows if row["outcome"] == AT_ONCE],
            waiting=sum(row["outcome"] == WAITS for row in rows),
            hidden=[("confirm", "yes"), *((f"kind-{row['case'].pk}", row["kind"] or "") for row in rows)],
        )

    # -- the case page and its buttons
    def change_view(self, request, object_id, form_url="", extra_context=None):
        return case_page(self, request, object_id)

    def get_urls(self):
        return [
            path("<int:case_id>/propose/", self.wrap(case_propose), name="enforcement_case_propose"),
            path("<int:case_id>/assign/", self.wrap(case_assign), name="enforcement_case_assign"),
            path("<int:case_id>/comment/", self.wrap(case_comment), name="enforcement_case_comment"),
            path("<int:case_id>/resolve/", self.wrap(case_resolve), name="enforcement_case_resolve"),
            path("<int:case_id>/notice/", self.wrap(case_notice_page), name="enforcement_case_notice"),
            path("views/save/", self.wrap(queue.view_save), name="enforcement_case_view_save"),
            path("views/<int:view_id>/share/", self.wrap(queue.view_share), name="enforcement_case_view_share"),
            path("views/<int:view_id>/delete/", self.wrap(queue.view_delete), name="enforcement_case_view_delete"),
            path("timeline-filters/", self.wrap(queue.timeline_filters), name="enforcement_case_timeline_filters"),
            *super().get_urls(),
        ]


# --------------------------------------------------------------------------- proposing the ladder's advice

NO_ACTION, COVERED, WAITS, AT_ONCE = "no_action", "covered", "waits", "at_once"


def proposal_outlook(actor, case: Case, *, now) -> dict:
    """What proposing the ladder's recommendation on ``case`` would do, as the services answer it: the kind
    (``recommendation_for``), the action that already covers it (``covering_action``: then nothing is proposed),
    and whether it waits for a lead (``requires_approval``) or is applied at once, and so emails the customer."""
    recommendation = services.recommendation_for(case, now=now)
    kind = recommendation.kind
    covering = services.covering_action(case=case, kind=kind) if kind else None
    if kind is None:
        outcome = NO_ACTION
    elif covering is not None:
        outcome = COVERED
    else:
        outcome = WAITS if requires_approval(kind, actor) else AT_ONCE
    return {"recommendation": recommendation, "kind": kind, "covering": covering, "outcome": outcome}


def confirmed_kinds(request) -> dict[int, str | None]:
    """The kind shown for each case on the confirmation page ("" for none), by case id."""
    prefix = "kind-"
    return {
        int(name[len(prefix):]): value or None
        for name, value in request.POST.items()
        if name.startswith(prefix) and name[len(prefix):].isdigit()
    }


def _listing(items: list[str], limit: int = 20) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def propose_confirmed(request, actor, cases: list[Case], kinds: dict[int, str | None]) -> None:
    """Propose, on each case, the kind its confirmation page showed; a case whose advice has changed since, or
    that the page did not show, is skipped. The outcome is one message per kind of result."""
    at_once, waiting, skipped, errors = [], [], [], []
    for missing in sorted(set(kinds) - {case.pk for case in cases}):
        skipped.append(f"#{missing} (no longer in the queue)")
    for case in cases:
        if case.pk not in kinds:
            errors.append(f"#{case.pk}: not on the confirmation page; nothing was proposed.")
            continue
        recommendation = services.recommendation_for(case)
        if recommendation.kind != kinds[case.pk]:
            skipped.append(f"#{case.pk} (the ladder now recommends {recommendation.kind or 'no action'}, "
                           f"not the {kinds[case.pk] or 'no action'} you confirmed; open the case)")
            continue
        try:
            action = services.action_propose(actor=actor, case_id=case.pk, kind=recommendation.kind,
                                             reason=recommendation.reason)
        except Conflict as exc:  # an action already covers it (services.covering_action)
            skipped.append(f"#{case.pk} ({exc.message})")
        except ServiceError as exc:
            errors.append(f"#{case.pk}: {error_text(exc)}")
        else:
            done = f"#{case.pk} {action.get_kind_display().lower()} #{action.pk}"
            (waiting if action.status == ActionStatus.AWAITING_APPROVAL else at_once).append(done)
    if at_once:
        messages.success(request, f"Applied at once on {len(at_once)} case(s), each customer is emailed: "
                                  f"{_listing(at_once)}.")
    if waiting:
        messages.info(request, f"Waiting for a lead on {len(waiting)} case(s), the leads are emailed: "
                               f"{_listing(waiting)}.")
    if skipped:
        messages.warning(request, f"Skipped {len(skipped)}: {_listing(skipped)}.")
    for error in errors[:10]:
        messages.error(request, error)


# --------------------------------------------------------------------------- taking over a case


def held_by_others(request, cases: list[Case]) -> list[Case]:
    return [case for case in cases if case.assignee_id not in (None, request.user.pk)]


def holder_fields(cases: list[Case]) -> list[tuple[str, int]]:
    """The confirmation of taking each case over from the person who holds it now."""
    return [(f"holder-{case.pk}", case.assignee_id) for case in cases]


def takeovers_unconfirmed(request, cases: list[Case]) -> bool:
    """Someone else holds one of the cases, and this request has not confirmed taking it over from that
    person (a confirmation names the holder: if the case changed hands since, it is asked again)."""
    return any(request.POST.get(name) != str(holder) for name, holder in holder_fields(held_by_others(request, cases)))


# --------------------------------------------------------------------------- the case page

TIMELINE_KINDS = [
    ("violation", "Violations"),
    ("action", "Actions"),
    ("notification", "Emails"),
    ("comment", "Comments"),
    ("appeal", "Appeals"),
    ("audit", "Audit"),
]


def _audit_changes(event) -> list[dict]:
    """What an audit event changed: the fields whose value differs (all of them for a creation)."""
    before, after = event.before or {}, event.after or {}
    return [
        {"name": name, "before": before.get(name), "after": after.get(name), "created": name not in before}
        for name in dict.fromkeys([*before, *after])
        if name not in before or before.get(name) != after.get(name)
    ]


TIMELINE_PAGE = 50  # timeline entries per page, newest first
INLINE_NOTICE_MAX_VIOLATIONS = 200  # a bigger case's recommended notice loads when its disclosure opens
GROUP_SHOWN = 5  # violations shown per rule group, newest first
SUMMARY_CHARS = 110
CASE_PAGE_KEYS = 25  # keys listed (and offered as checkboxes) on the case page; an account's page lists them all
ACTION_KEYS_SHOWN = 10  # key prefixes named on an action's card
CASE_PAGE_STATEMENTS = 5  # statements of reasons shown, the latest first (every one: /api/v1/statements/)


def one_line(text: str, limit: int = SUMMARY_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def violation_groups(violations: list[Violation], *, worst: Violation | None) -> list[dict]:
    """The case's violations by rule: first the rule of the violation that set the case's severity (the one
    the ladder advises on), then by the most severe open violation, then by count; newest first in each."""
    groups: dict[int, dict] = {}
    for violation in sorted(violations, key=lambda v: v.reported_at, reverse=True):
        group = groups.setdefault(violation.rule_id, {"rule": violation.rule, "violations": [], "open": 0, "rank": -1})
        group["violations"].append(violation)
        if violation.status == Violation.Status.OPEN:
            group["open"] += 1
            group["rank"] = max(group["rank"], SEVERITY_RANK[violation.severity])
    ordered = sorted(groups.values(), key=lambda g: (
        worst is None or g["rule"].pk != worst.rule_id, -g["rank"], -len(g["violations"]), g["rule"].code))
    for group in ordered:
        group["shown"] = group["violations"][:GROUP_SHOWN]
        group["more"] = len(group["violations"]) - len(group["shown"])
        group["severity"] = Severity.values[group["rank"]] if group["rank"] >= 0 else None
        group["sets_severity"] = worst is not None and group["rule"].pk == worst.rule_id
    return ordered


def severity_setter(violations: list[Violation]) -> Violation | None:
    """The open violation that set the case's severity (``recommendation_for``'s choice among equals)."""
    open_ones = sorted((v for v in violations if v.status == Violation.Status.OPEN),
                       key=lambda v: (v.rule.act_first, v.reported_at), reverse=True)
    return max(open_ones, key=lambda v: (SEVERITY_RANK[v.severity], v.rule.auto_action), default=None)


def timeline_page(request, entries: list, hidden: list[str]) -> dict:
    """The timeline's entries of the kinds shown, newest first, one page of ``TIMELINE_PAGE`` (``?tl=`` the
    offset): a case with thousands of reports renders fifty rows, with links to older ones."""
    shown = [entry for entry in reversed(entries) if entry.kind not in hidden]
    raw = request.GET.get("tl", "")
    offset = int(raw) if raw.isdigit() and len(raw) <= 9 else 0
    offset = max(0, min(offset, max(len(shown) - 1, 0)))
    window = shown[offset: offset + TIMELINE_PAGE]
    query = request.GET.copy()

    def at(position: int) -> str:
        query["tl"] = str(position)
        return f"?{query.urlencode()}"

    return {
        "entries": window,
        "total": len(shown),
        "hidden_count": len(entries) - len(shown),
        "offset": offset,
        "last": offset + len(window),
        "older_url": at(offset + TIMELINE_PAGE) if offset + TIMELINE_PAGE < len(shown) else "",
        "newer_url": at(max(offset - TIMELINE_PAGE, 0)) if offset else "",
    }


def case_page_context(request, case: Case, model_admin=None) -> dict:
    """Everything on the case page, from a case loaded with ``case_detail_queryset(evidence=False)``: a fixed
    number of queries whatever the number of violations, actions, emails, comments or audit events, and a
    bounded page (one page of the timeline, a few violations per rule; evidence read for those alone)."""
    actor = actor_for(request)
    now = timezone.now()
    is_open = case.status != Case.Status.CLOSED
    may_work = actor.can(WORK_CASE) and is_open
    actions_by_id = {action.pk: action for action in case.actions.all()}
    hidden = services.timeline_hidden(request.user)
    page = timeline_page(request, case_timeline(case), hidden)
    violations = list(case.violations.all())
    groups = violation_groups(violations, worst=severity_setter(violations))

    shown_violations = {entry.obj.pk for entry in page["entries"] if entry.kind == "violation"}
    shown_violations.update(v.pk for group in groups for v in group["shown"])
    evidence = dict(Violation.objects.filter(pk__in=shown_violations).values_list("pk", "evidence"))
    violation_rows = {}
    for violation in violations:
        if violation.pk in shown_violations:
            violation.evidence = evidence.get(violation.pk) or {}
            violation_rows[violation.pk] = {
                "obj": violation,
                "line": one_line(violation.summary),
                "evidence": json.dumps(violation.evidence, indent=2, sort_keys=True) if violation.evidence else "",
                "can_dismiss": may_work and violation.status == Violation.Status.OPEN,
                "refusal_chart": gate_report_chart(violation),
            }
    for group in groups:
        group["rows"] = [violation_rows[v.pk] for v in group["shown"]]
    in_groups = {v.pk for group in groups for v in group["shown"]}

    audit_ids = [entry.obj.pk for entry in page["entries"] if entry.kind == "audit"]
    changes = {pk: (before, after) for pk, before, after in
               AuditEvent.objects.filter(pk__in=audit_ids).values_list("pk", "before", "after")}
    rows = []
    for entry in page["entries"]:
        row = {"entry": entry, "kind": entry.kind, "obj": entry.obj}
        if entry.kind == "violation":
            row["violation"] = violation_rows[entry.obj.pk]
            row["in_groups"] = entry.obj.pk in in_groups
        elif entry.kind == "notification":
            row["can_resend"] = actor.can(WORK_CASE) and entry.obj.status == Notification.Status.FAILED
        elif entry.kind == "appeal":
            refusal = services.check_appeal_decide(actor, entry.obj, actions_by_id[entry.obj.action_id])
            row["can_decide"] = refusal is None
            row["decide_refusal"] = refusal.message if refusal and actor.can(DECIDE_APPEAL) else ""
        elif entry.kind == "audit":
            entry.obj.before, entry.obj.after = changes.get(entry.obj.pk, (None, None))
            row["changes"] = _audit_changes(entry.obj)
        rows.append(row)

    actions = sorted(case.actions.all(), key=lambda a: a.created_at, reverse=True)
    action_rows = [
        {
            "action": action,
            "verbs": action_verbs(actor, action, case=case, now=now),
            "keys": [key.prefix for key in action.keys.all()][:ACTION_KEYS_SHOWN],
            "more_keys": max(0, len(action.keys.all()) - ACTION_KEYS_SHOWN),
            "approval_note": approval_note(actor, action) if action.status == ActionStatus.AWAITING_APPROVAL else "",
            "appeal": getattr(action, "appeal", None),
        }
        for action in actions
    ]
    decide_rows = [row for row in action_rows if {"approve", "confirm"} & set(row["verbs"])
                   or row["approval_note"]]

    outlook = proposal_outlook(actor, case, now=now) if is_open else {"recommendation": None, "outcome": NO_ACTION}
    recommendation = outlook["recommendation"]
    may_propose = actor.can(PROPOSE_ACTION) and is_open
    recommended_notice, notice_url = None, ""
    if may_propose and outlook["outcome"] in (WAITS, AT_ONCE):
        if len(violations) <= INLINE_NOTICE_MAX_VIOLATIONS:
            recommended_notice = shown_notice(lambda: services.notice_preview(
                case=case, kind=recommendation.kind, reason=recommendation.reason, actor=actor
            ))
        else:  # rendering it reads every violation again: loaded when the disclosure is opened
            notice_url = reverse("admin:enforcement_case_notice", args=[case.pk])
    standing = account_standing(case.account, now=now)
    # An account may hold thousands of keys: the first ones here, every one on the account's page.
    case_keys = list(APIKey.objects.filter(account=case.account).order_by("prefix")[:CASE_PAGE_KEYS + 1])
    key_count = len(case_keys) if len(case_keys) <= CASE_PAGE_KEYS else APIKey.objects.filter(
        account=case.account).count()
    sla_text, sla_tone = sla_state(case.review_due_at, now=now, closed=not is_open)
    kinds = [
        {"value": value, "label": label, "needs_approval": requires_approval(value, actor)}
        for value, label in ActionKind.choices
    ]
    query = queue.clean_query(model_admin, request.GET.get(queue.FILTERS_PARAM, "")) if model_admin else ""
    return {
        "case": case,
        "account": case.account,
        "timeline": rows,
        "timeline_page": page,
        "timeline_kinds": [(value, label, value not in hidden) for value, label in TIMELINE_KINDS],
        "violation_groups": groups,
        "violation_count": len(violations),
        "action_rows": action_rows,
        "decide_rows": decide_rows,
        "recommendation": recommendation,
        "recommendation_needs_approval": outlook["outcome"] == WAITS,
        "already": outlook.get("covering"),
        "recommended_notice": recommended_notice,
        "recommended_notice_url": notice_url,
        "standing": standing,
        "case_keys": case_keys[:CASE_PAGE_KEYS],
        "key_count": key_count,
        "more_keys": key_count - min(key_count, CASE_PAGE_KEYS),
        "sla_text": sla_text,
        "sla_tone": sla_tone,
        "kinds": kinds,
        "is_open": is_open,
        "may_work": may_work,
        "may_propose": may_propose,
        "staff": list(assignable_staff()) if may_work else [],
        "statements": [json.dumps(statement, indent=2)
                       for statement in case_statements(case, limit=CASE_PAGE_STATEMENTS)],
        "statement_count": len(restrictive_applied(case)),
        "flow": queue.neighbours(model_admin, request, case.pk, query) if model_admin else None,
    }


def case_page(model_admin, request, object_id: str):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    number = case_number(str(object_id))
    case = case_detail_queryset(evidence=False).filter(pk=number).first() if number is not None else None
    if case is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.model._meta, str(object_id))
    context = admin_context(
        model_admin, request, title=f"Case #{case.pk}", original=case,
        **case_page_context(request, case, model_admin),
    )
    return TemplateResponse(request, "admin/enforcement/case/case_page.html", context)


def case_notice_page(model_admin, request, case_id: int):
    """The notice the customer would receive if the ladder's recommendation were proposed now (the case page of
    a big case loads it into its "Preview the customer's notice" disclosure when opened). Changes nothing."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    actor = actor_for(request)
    require(request, actor.can(PROPOSE_ACTION))
    case = Case.objects.select_related("account").filter(pk=case_id).first()
    if case is None:
        messages.error(request, f"No case {case_id}.")
        return HttpResponseRedirect(reverse("admin:enforcement_case_changelist"))
    outlook = proposal_outlook(actor, case, now=timezone.now())
    if case.is_open and outlook["outcome"] in (WAITS, AT_ONCE):
        recommendation = outlook["recommendation"]
        notice = shown_notice(lambda: services.notice_preview(
            case=case, kind=recommendation.kind, reason=recommendation.reason, actor=actor
        ))
    else:
        notice = {"ok": False, "note": "Proposing the recommendation now would send no notice: the case is closed, "
                  "the ladder recommends no action, or an action already covers it."}
    context = admin_context(model_admin, request, title=f"The customer's notice: case #{case.pk}", case=case,
                            notice=notice, kind=outlook["kind"])
    return TemplateResponse(request, "admin/enforcement/case/notice.html", context)


# --------------------------------------------------------------------------- case buttons


@post_only
def case_propose(model_admin, request, case_id: int):
    actor = actor_for(request)
    require(request, actor.can(PROPOSE_ACTION))
    # Ticked boxes, or (for an account with more keys than the page lists) prefixes typed into one field.
    prefixes = [prefix for value in request.POST.getlist("keys") for prefix in value.replace(",", " ").split()]
    data = request.POST.copy()
    data.setlist("keys", prefixes)
    form = ProposeForm(data, key_prefixes=prefixes)
    if not form.is_valid():
        messages.error(request, form_error_text(form))
        return HttpResponseRedirect(next_url(request, case_url(case_id)))
    data = form.cleaned_data

    def done(action: EnforcementAction) -> str:
        if action.status == ActionStatus.AWAITING_APPROVAL:
            return f"{action.get_kind_display()} #{action.pk} proposed; it awaits a lead's approval."
        return f"{action.get_kind_display()} #{action.pk} proposed; it is being applied to the keys."

    call_service(
        request,
        lambda: services.action_propose(
            actor=actor, case_id=case_id, kind=data["kind"] or None, reason=data["reason"],
            key_prefixes=data["keys"] or None, rate_limit_per_minute=data["rate_limit_per_minute"],
            ip_rate_limit_per_minute=data["ip_rate_limit_per_minute"], expires_at=data["expires_at"],
            remediation_deadline=data["remediation_deadline"],
        ),
        done,
    )
    return HttpResponseRedirect(next_url(request, case_url(case_id)))


@post_only
def case_assign(model_admin, request, case_id: int):
    actor = actor_for(request)
    require(request, actor.can(WORK_CASE))
    form = AssignForm(request.POST)
    form.is_valid()
    raw = form.cleaned_data.get("assignee", "")
    if raw == "me":
        assignee_id = request.user.pk
        case = Case.objects.select_related("account", "assignee").filter(pk=case_id).first()
        if case is not None and takeovers_unconfirmed(request, [case]):
            back = next_url(request, case_url(case_id))
            context = admin_context(
                model_admin, request, title=f"Take over case #{case.pk}", held=[case], free=0, back_url=back,
                hidden=[("assignee", "me"), ("next", back), *holder_fields([case])],
            )
            return TemplateResponse(request, "admin/enforcement/case/take_over.html", context)
    elif raw.isdigit():
        assignee_id = int(raw)
    elif raw == "":
        assignee_id = None
    else:
        messages.error(request, "Choose someone to assign the case to.")
        return HttpResponseRedirect(next_url(request, case_url(case_id)))
    call_service(
        request,
        lambda: services.case_assign(actor=actor, case_id=case_id, assignee_id=assignee_id),
        lambda case: f"Case #{case.pk} assigned to {case.assignee.get_username()}." if case.assignee_id
        else f"Case #{case.pk} unassigned.",
    )
    return HttpResponseRedirect(next_url(request, case_url(case_id)))


@post_only
def case_comment(model_admin, request, case_id: int):
    actor = actor_for(request)
    require(request, actor.can(WORK_CASE))
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A comment needs some text.")
    else:
        body = form.cleaned_data["body"]
        call_service(request, lambda: services.case_comment(actor=actor, case_id=case_id, body=body), "Comment added.")
    return HttpResponseRedirect(next_url(request, case_url(case_id)))


@post_only
def case_resolve(model_admin, request, case_id: int):
    actor = actor_for(request)
    require(request, actor.can(WORK_CASE))
    form = ResolveForm(request.POST)
    form.is_valid()
    call_service(
        request,
        lambda: services.case_resolve(actor=actor, case_id=case_id, resolution=form.cleaned_data.get("resolution", "")),
        lambda case: f"Case #{case.pk} resolved and closed.",
    )
    return HttpResponseRedirect(next_url(request, case_url(case_id)))
