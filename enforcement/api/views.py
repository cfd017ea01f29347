"""The API's views: parse with an input serializer, check the scope, call a service, render.

Scopes are declared per route in ``required_scopes`` and checked by ``ScopePermission``;
the services check the finer rules (who may suspend, four eyes) and raise ``ServiceError``s
that the exception handler renders in the one error shape.
"""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account, APIKey
from enforcement import services
from enforcement.api import serializers as s
from enforcement.api.auth import actor_of
from enforcement.api.exceptions import exception_payload
from enforcement.api.filters import (
    ActionFilter,
    AppealFilter,
    AuditEventFilter,
    CaseFilter,
    StatementExportFilter,
    StatementFilter,
    ViolationFilter,
)
from enforcement.api.idempotency import idempotent
from enforcement.api.permissions import AnyOf, token_has_scope
from enforcement.errors import ServiceError, ValidationFailed
from enforcement.models import Appeal, AuditEvent, Case, EnforcementAction, Rule, ServiceToken, Violation
from enforcement.selectors import account_standing, case_detail_queryset, sources_overview
from enforcement.statements import BATCH_SIZE as STATEMENT_BATCH_SIZE
from enforcement.statements import (
    decode_position,
    encode_position,
    key_revocations,
    restrictive_actions,
    statement_page,
)

S = ServiceToken.Scope


def parse(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ApiViewSet(viewsets.GenericViewSet):
    # Ids are positive 64-bit integers: a longer run of digits names nothing (404), and is never converted.
    lookup_value_regex = "[0-9]{1,19}"


# --------------------------------------------------------------------------- inventory


class AccountUpsertView(APIView):
    required_scopes = {"PUT": S.INVENTORY_WRITE}

    @extend_schema(
        operation_id="account_upsert",
        tags=["inventory"],
        request=s.AccountUpsertSerializer,
        responses={200: s.AccountSerializer, 201: s.AccountSerializer},
        summary="Create or update an account (mirrored from the platform).",
    )
    def put(self, request, public_id: str):
        data = parse(s.AccountUpsertSerializer, request.data)
        account, created = services.account_upsert(actor=actor_of(request), public_id=public_id, **data)
        return Response(
            s.AccountSerializer(account).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class AccountStandingView(APIView):
    required_scopes = {"GET": S.CASES_READ}

    @extend_schema(
        operation_id="account_standing",
        tags=["inventory"],
        responses={200: s.StandingSerializer},
        summary="An account's standing: status, strikes, open case, actions in force, keys.",
    )
    def get(self, request, public_id: str):
        account = services.account_get(public_id)
        standing = account_standing(account)
        # The keys as rows of the serializer's fields (thousands for a large account): not whole model instances.
        standing["keys"] = list(APIKey.objects.filter(account=account).order_by("prefix")
                                .values(*s.StandingKeySerializer.Meta.fields))
        if standing["open_case"] is not None:
            standing["open_case"].account = account
        return Response(s.StandingSerializer(standing).data)


class KeyUpsertView(APIView):
    required_scopes = {"PUT": S.INVENTORY_WRITE}

    @extend_schema(
        operation_id="key_upsert",
        tags=["inventory"],
        request=s.KeyUpsertSerializer,
        responses={200: s.KeySerializer, 201: s.KeySerializer},
        summary="Create or update an API key by its prefix (mirrored from the platform).",
    )
    def put(self, request, prefix: str):
        data = parse(s.KeyUpsertSerializer, request.data)
        account = Account.objects.filter(public_id=data.pop("account")).first()
        if account is None:
            raise ValidationFailed("The key is not valid.", fields={"account": ["No such account."]})
        key, created = services.key_upsert(actor=actor_of(request), prefix=prefix, account=account, **data)
        return Response(s.KeySerializer(key).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# --------------------------------------------------------------------------- rules


@extend_schema_view(list=extend_schema(tags=["rules"], summary="The AUP rule catalogue."))
class RuleViewSet(mixins.ListModelMixin, ApiViewSet):
    serializer_class = s.RuleSerializer
    queryset = Rule.objects.filter(is_active=True)
    required_scopes = {"list": S.CASES_READ, "simulate": S.CASES_READ}
    cursor_ordering = "code"
    lookup_field = "code"
    lookup_value_regex = "[-a-zA-Z0-9_]+"

    @extend_schema(
        tags=["rules"],
        summary="Replay the rule's recent decisions under a proposed ladder; changes nothing.",
        description="Each violation of the rule reported in the last `days` is run through the ladder under the "
        "rule as it stands and under the proposal (fields left out keep their current value), with its severity, "
        "the source's trust and the strikes its account had then; beside them, the strongest action decided on it.",
        request=s.SimulationProposalSerializer,
        responses={200: s.SimulationSerializer},
    )
    @action(detail=True, methods=["post"])
    def simulate(self, request, code: str):
        changes = parse(s.SimulationProposalSerializer, request.data)
        days = changes.pop("days")
        simulation = services.policy_simulate(rule_code=code, changes=changes, days=days)
        return Response(s.SimulationSerializer(simulation).data)


# --------------------------------------------------------------------------- violations


@extend_schema_view(
    list=extend_schema(
        tags=["violations"],
        summary="Violations, newest first.",
        description="A token with `violations:write` but not `cases:read` sees the violations it reported.",
    ),
    retrieve=extend_schema(tags=["violations"]),
)
class ViolationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.ViolationSerializer
    filterset_class = ViolationFilter
    required_scopes = {
        "list": AnyOf(S.CASES_READ, S.VIOLATIONS_WRITE),
        "retrieve": AnyOf(S.CASES_READ, S.VIOLATIONS_WRITE),
        "create": S.VIOLATIONS_WRITE,
        "batch": S.VIOLATIONS_WRITE,
        "dismiss": S.CASES_WRITE,
    }

    def get_queryset(self):
        violations = Violation.objects.select_related("account", "api_key", "rule")
        if not token_has_scope(self.request, S.CASES_READ):
            violations = violations.filter(reported_by=actor_of(self.request).label)
        return violations

    @extend_schema(
        tags=["violations"],
        summary="Report a violation.",
        description="The same (source, external_id) again answers 200 with the first report; nothing new is made.",
        request=s.ViolationReportSerializer,
        responses={
            201: s.ViolationReportResultSerializer,
            200: OpenApiResponse(s.ViolationReportResultSerializer, description="Already reported: the first one."),
        },
    )
    @idempotent
    def create(self, request):
        data = parse(s.ViolationReportSerializer, request.data)
        result = services.violation_report(actor=actor_of(request), **data)
        return Response(
            s.ViolationReportResultSerializer.render(result),
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(
        tags=["violations"],
        summary="Report up to 500 violations.",
        description="One answer per item, in order: the report (as from POST /violations/) or that item's error. "
        "One bad item does not block the others.",
        request=s.ViolationBatchRequestSerializer,
        responses={200: s.ViolationBatchResultSerializer},
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def batch(self, request):
        items = parse(s.ViolationBatchSerializer, request.data)["violations"]
        results: list = [None] * len(items)
        reports, positions = [], []
        item_serializer = s.ViolationReportSerializer()
        for index, item in enumerate(items):
            try:
                reports.append(item_serializer.run_validation(item))
                positions.append(index)
            except ValidationError as exc:
                results[index] = exception_payload(exc)[1]
        answers = services.violation_report_batch(actor=actor_of(request), reports=reports) if reports else []
        counts = {"created": 0, "replayed": 0, "failed": len(items) - len(reports)}
        iso = s.iso_renderer()
        for index, answer in zip(positions, answers, strict=True):
            if isinstance(answer, ServiceError):
                results[index] = exception_payload(answer)[1]
                counts["failed"] += 1
            else:
                results[index] = s.ViolationReportResultSerializer.render(answer, iso)
                counts["created" if answer.created else "replayed"] += 1
        return Response({"results": results, **counts})

    @extend_schema(
        tags=["violations"],
        summary="Dismiss a violation (it no longer counts towards its case).",
        request=s.DismissSerializer,
        responses={200: s.ViolationSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def dismiss(self, request, pk: str):
        data = parse(s.DismissSerializer, request.data)
        violation = services.violation_dismiss(actor=actor_of(request), violation_id=int(pk), reason=data["reason"])
        return Response(s.ViolationSerializer(violation).data)


# --------------------------------------------------------------------------- sources


class SourceListView(APIView):
    required_scopes = {"GET": S.CASES_READ}

    @extend_schema(
        operation_id="sources_list", tags=["violations"], responses={200: s.SourceSerializer(many=True)},
        summary="Reporting sources and their track record: a trusted source below its precision floor loses act-first.",
        description="`precision`: the actioned share of its last `DETECTOR_MIN_DECIDED` decided reports (actioned, "
        "dismissed or overturned). Below `DETECTOR_MIN_PRECISION` its critical reports wait for a lead.",
    )
    def get(self, request):
        return Response(s.SourceSerializer(sources_overview(), many=True).data)


# --------------------------------------------------------------------------- cases


@extend_schema_view(
    list=extend_schema(tags=["cases"], summary="Cases, newest first; filter to build a queue."),
    retrieve=extend_schema(
        tags=["cases"], summary="A case with its violations, actions, notifications, comments, appeals and timeline."
    ),
)
class CaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    filterset_class = CaseFilter
    required_scopes = {
        "list": S.CASES_READ,
        "retrieve": S.CASES_READ,
        "assign": S.CASES_WRITE,
        "comment": S.CASES_WRITE,
        "resolve": S.CASES_WRITE,
        "actions": S.ACTIONS_WRITE,
    }

    def get_queryset(self):
        if self.action == "retrieve":
            return case_detail_queryset(audit_changes=False)
        return Case.objects.select_related("account", "assignee")

    def get_serializer_class(self):
        return s.CaseDetailSerializer if self.action == "retrieve" else s.CaseSerializer

    @extend_schema(tags=["cases"], request=s.CaseAssignSerializer, responses={200: s.CaseSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def assign(self, request, pk: str):
        username = parse(s.CaseAssignSerializer, request.data)["assignee"]
        assignee_id = None
        if username is not None:
            assignee_id = get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()
            if assignee_id is None:
                raise ValidationFailed("No such staff member.", fields={"assignee": ["No such staff member."]})
        case = services.case_assign(actor=actor_of(request), case_id=int(pk), assignee_id=assignee_id)
        return Response(s.CaseSerializer(case).data)

    @extend_schema(
        tags=["cases"], request=s.CaseCommentSerializer,
        responses={201: s.CommentSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def comment(self, request, pk: str):
        body = parse(s.CaseCommentSerializer, request.data)["body"]
        comment = services.case_comment(actor=actor_of(request), case_id=int(pk), body=body)
        return Response(s.CommentSerializer(comment).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["cases"], request=s.CaseResolveSerializer, responses={200: s.CaseSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def resolve(self, request, pk: str):
        resolution = parse(s.CaseResolveSerializer, request.data)["resolution"]
        case = services.case_resolve(actor=actor_of(request), case_id=int(pk), resolution=resolution)
        return Response(s.CaseSerializer(case).data)

    @extend_schema(
        tags=["actions"],
        summary="Propose an enforcement action on a case.",
        description="Without `kind`, the ladder's recommendation for the case. A suspension by a caller who may "
        "not suspend, and every termination, waits for a lead's approval (`awaiting_approval`).",
        request=s.ActionProposeSerializer,
        responses={201: s.ActionSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def actions(self, request, pk: str):
        data = parse(s.ActionProposeSerializer, request.data)
        action = services.action_propose(
            actor=actor_of(request), case_id=int(pk), reason=data["reason"], kind=data.get("kind"),
            key_prefixes=data.get("keys"), rate_limit_per_minute=data.get("rate_limit_per_minute"),
            ip_rate_limit_per_minute=data.get("ip_rate_limit_per_minute"), expires_at=data.get("expires_at"),
            remediation_deadline=data.get("remediation_deadline"),
        )
        return Response(s.ActionSerializer(action).data, status=status.HTTP_201_CREATED)


# --------------------------------------------------------------------------- actions


@extend_schema_view(
    list=extend_schema(tags=["actions"], summary="Enforcement actions, newest first."),
    retrieve=extend_schema(tags=["actions"]),
)
class ActionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.ActionSerializer
    filterset_class = ActionFilter
    queryset = EnforcementAction.objects.select_related("account").prefetch_related("keys")
    required_scopes = {
        "list": S.CASES_READ,
        "retrieve": S.CASES_READ,
        "approve": S.ACTIONS_APPROVE,
        "cancel": S.ACTIONS_WRITE,
        "revert": S.ACTIONS_WRITE,
    }

    @extend_schema(
        tags=["actions"], summary="Approve a suspension or termination (a lead; never the requester's own "
        "termination).", request=None, responses={200: s.ActionSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, pk: str):
        action = services.action_approve(actor=actor_of(request), action_id=int(pk))
        return Response(s.ActionSerializer(action).data)

    @extend_schema(
        tags=["actions"], summary="Cancel an action that is not applied yet.", request=s.ReasonSerializer,
        responses={200: s.ActionSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk: str):
        reason = parse(s.ReasonSerializer, request.data)["reason"]
        action = services.action_cancel(actor=actor_of(request), action_id=int(pk), reason=reason)
        return Response(s.ActionSerializer(action).data)

    @extend_schema(
        tags=["actions"], summary="Lift an applied action; the keys keep what other actions still impose.",
        description="Reverting a suspension or termination needs `actions:approve` too (a lead).",
        request=s.ReasonSerializer, responses={200: s.ActionSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def revert(self, request, pk: str):
        reason = parse(s.ReasonSerializer, request.data)["reason"]
        action = services.action_revert(actor=actor_of(request), action_id=int(pk), reason=reason)
        return Response(s.ActionSerializer(action).data)


# --------------------------------------------------------------------------- appeals


@extend_schema_view(
    list=extend_schema(tags=["appeals"], summary="Appeals, newest first."),
    retrieve=extend_schema(tags=["appeals"]),
)
class AppealViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.AppealSerializer
    filterset_class = AppealFilter
    queryset = Appeal.objects.all()
    required_scopes = {
        "list": S.CASES_READ,
        "retrieve": S.CASES_READ,
        "create": S.APPEALS_WRITE,
        "decide": S.ACTIONS_APPROVE,
    }

    @extend_schema(
        tags=["appeals"], summary="Record a customer's appeal of an applied action.",
        request=s.AppealSubmitSerializer, responses={201: s.AppealSerializer},
    )
    @idempotent
    def create(self, request):
        data = parse(s.AppealSubmitSerializer, request.data)
        appeal = services.appeal_submit(actor=actor_of(request), action_id=data["action"], message=data["message"])
        return Response(s.AppealSerializer(appeal).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=["appeals"], summary="Decide an appeal (a lead): overturning reverts the action.",
        request=s.AppealDecideSerializer, responses={200: s.AppealSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def decide(self, request, pk: str):
        data = parse(s.AppealDecideSerializer, request.data)
        appeal = services.appeal_decide(
            actor=actor_of(request), appeal_id=int(pk), outcome=data["outcome"], note=data["note"]
        )
        return Response(s.AppealSerializer(appeal).data)


# --------------------------------------------------------------------------- audit


@extend_schema_view(
    list=extend_schema(tags=["audit"], summary="The audit log, newest first."),
    retrieve=extend_schema(tags=["audit"]),
)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.AuditEventSerializer
    filterset_class = AuditEventFilter
    queryset = AuditEvent.objects.select_related("account")
    required_scopes = {"list": S.AUDIT_READ, "retrieve": S.AUDIT_READ}



# --------------------------------------------------------------------------- transparency


@extend_schema_view(
    list=extend_schema(
        tags=["transparency"],
        summary="Statements of reasons (EU DSA Transparency Database, schema v2), one per applied restrictive action.",
        description="Throttles, suspensions and terminations that were applied, newest first; `since` and `until` "
        "bound the day they were applied. `puid` is `millimetric-action-<id>`: stable, unique.",
    ),
)
class StatementViewSet(mixins.ListModelMixin, ApiViewSet):
    serializer_class = s.StatementSerializer
    required_scopes = {"list": S.AUDIT_READ, "export": S.AUDIT_READ}

    def get_queryset(self):
        return restrictive_actions()

    def get_filterset_class(self):
        return StatementExportFilter if self.action == "export" else StatementFilter

    @property
    def filterset_class(self):
        return self.get_filterset_class()

    def _sources(self, request):
        """The applied actions and the leaked-key revocations within ``since`` and ``until`` (validated)."""
        actions = self.filter_queryset(self.get_queryset())  # a bad ``since`` or ``until`` is a 400 here
        bounds = self.get_filterset_class()(request.query_params, queryset=self.get_queryset())
        bounds.is_valid()
        cleaned = bounds.form.cleaned_data
        return actions, key_revocations(since=cleaned.get("since"), until=cleaned.get("until"))

    def _position(self, request, param: str):
        raw = request.query_params.get(param)
        if raw in (None, ""):
            return None
        position = decode_position(raw)
        if position is None:
            message = "Not a position of this list: use the next link of an earlier page."
            raise ValidationFailed(f"{param}: {message}", fields={param: [message]},
                                   code="invalid_cursor" if param == "cursor" else "validation_error")
        return position

    def _next(self, request, param: str, position) -> str | None:
        if position is None:
            return None
        query = request.query_params.copy()
        query[param] = encode_position(position)
        return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

    def list(self, request):
        actions, revocations = self._sources(request)
        size = self.paginator.get_page_size(request)
        made, last = statement_page(actions, revocations, after=self._position(request, "cursor"),
                                    descending=True, size=size)
        # Newest first across both sources; ``next`` only (a statement list is read forwards).
        return Response({"next": self._next(request, "cursor", last), "previous": None,
                         "results": s.StatementSerializer(made, many=True).data})

    @extend_schema(
        tags=["transparency"],
        summary="Statements of reasons in batches of at most 100, oldest first, as the database's batch endpoint "
        "takes them.",
        description="Send `statements` as one batch; follow `next` (null after the last batch).",
        responses={200: s.StatementBatchSerializer},
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        actions, revocations = self._sources(request)
        made, last = statement_page(actions, revocations, after=self._position(request, "after"),
                                    descending=False, size=STATEMENT_BATCH_SIZE)
        return Response({"statements": made, "next": self._next(request, "after", last)})
