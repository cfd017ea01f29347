"""The team's figures over the API: a period's summary (JSON) and gauges for Prometheus (``GET /metrics``)."""

from datetime import UTC, datetime

from django import forms
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rest_framework.response import Response
from rest_framework.views import APIView

from enforcement import metrics
from enforcement.api import serializers as s
from enforcement.api.filters import UTCDateTimeField
from enforcement.errors import ValidationFailed
from enforcement.models import ServiceToken
from lib import broker, prom

S = ServiceToken.Scope
LAST_INSTANT = datetime(9999, 12, 31, tzinfo=UTC)


class PeriodForm(forms.Form):
    since = UTCDateTimeField(required=False)
    until = UTCDateTimeField(required=False)


def parse_period(query) -> tuple:
    form = PeriodForm(query)
    if not form.is_valid():
        fields = {name: [str(e) for e in errors] for name, errors in form.errors.items()}
        raise ValidationFailed("The period is not valid.", fields=fields)
    try:
        since, until = metrics.period(form.cleaned_data.get("since"), form.cleaned_data.get("until"))
    except OverflowError:  # e.g. until=0001-01-01: its default start would be before year 1
        raise ValidationFailed("The period is out of range.", fields={"until": ["Out of range."]}) from None
    if until > LAST_INSTANT:  # the summary counts whole days: the one after the period's last must exist
        raise ValidationFailed("The period is out of range.", fields={"until": ["At most 9999-12-31T00:00:00Z."]})
    if since >= until:
        raise ValidationFailed("The period is empty.", fields={"since": ["Must be before until."]})
    if until - since > metrics.MAX_PERIOD:
        raise ValidationFailed("The period is too long.",
                               fields={"since": [f"At most {metrics.MAX_PERIOD.days} days."]})
    return since, until


class MetricsSummaryView(APIView):
    required_scopes = {"GET": S.AUDIT_READ}

    @extend_schema(
        operation_id="metrics_summary", tags=["transparency"], responses={200: s.MetricsSummarySerializer},
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Start (default: 30 days before until)."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="End, exclusive (default: now)."),
        ],
        summary="Reports, cases, review and approval times, SLA, actions, appeals, staff and detectors over a period.",
        description="Counted by UTC day, from the daily roll-up (at most `METRICS_ROLLUP_INTERVAL_SECONDS` old): "
        "reports per day by rule and source, cases opened and closed, first reviews made (from opening to the "
        "first `case.reviewed` event or first staff action) and approvals (from the proposal) with nearest-rank "
        "percentiles in seconds (to the minute under an hour, 5 minutes under a day, the hour beyond), SLA "
        "breaches (reviewed late, or unreviewed past a deadline in the period), actions applied by kind and rule, "
        "appeals decided and the overturn rate by rule, each staff member's work, detectors' precision.",
    )
    def get(self, request):
        since, until = parse_period(request.query_params)
        return Response(metrics.summary(since=since, until=until))


class _ScrapeCollector:
    """Computes the gauges when Prometheus scrapes, from the database, the edge store and the broker (nothing
    kept between scrapes); the processes' counters come from ``lib.prom``."""

    def collect(self):
        figures = metrics.gauges()
        outbox = GaugeMetricFamily("millimetric_outbox_notifications", "Emails in the outbox by status.",
                                   labels=["status"])
        for status, n in figures["outbox"].items():
            outbox.add_metric([status], n)
        actions = GaugeMetricFamily("millimetric_enforcement_actions", "Actions applied (in force) or failed, by kind.",
                                    labels=["status", "kind"])
        for status, by_kind in figures["actions"].items():
            for kind, n in by_kind.items():
                actions.add_metric([status, kind], n)
        cases = GaugeMetricFamily("millimetric_open_cases", "Open cases by severity.", labels=["severity"])
        for severity, n in figures["open_cases"].items():
            cases.add_metric([severity], n)
        yield outbox
        yield actions
        yield GaugeMetricFamily("millimetric_sla_breaches", "Open cases past their review deadline.",
                                value=figures["sla_breaches"])
        yield cases
        reports = CounterMetricFamily("millimetric_reports", "Reports received (violations ingested), by source.",
                                      labels=["source"])
        for source, n in sorted(metrics.reports_by_source().items()):
            reports.add_metric([source], n)
        yield reports
        lag, behind = metrics.edge_publish_lag()
        yield GaugeMetricFamily(
            "millimetric_edge_publish_lag_seconds", "Age of the oldest key state change the edge store has not got "
            "yet, among the keys changed in the last hour (0: none behind; -1: the store did not answer).", value=lag)
        yield GaugeMetricFamily("millimetric_edge_keys_behind", "Keys changed in the last hour whose state the "
                                "edge store has not got yet (-1: the store did not answer).", value=behind)
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        depth = GaugeMetricFamily("millimetric_task_queue_depth", "Tasks waiting in the broker's queue (-1: the "
                                  "broker did not answer within a second).", labels=["queue"])
        depth.add_metric([queue], broker.queue_depth(
            settings.CELERY_BROKER_URL, queue, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            timeout=settings.METRICS_BROKER_TIMEOUT_SECONDS,
        ))
        yield depth


class PrometheusView(APIView):
    required_scopes = {"GET": S.AUDIT_READ}

    @extend_schema(exclude=True)  # Prometheus text, not JSON; documented in the README
    def get(self, request):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_ScrapeCollector())
        registry.register(prom.counters_collector())
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
