"""Routes of the REST API (``/api/v1/``), its OpenAPI schema and its interactive docs."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from enforcement.api import gate, metrics, views

router = SimpleRouter()
router.register("rules", views.RuleViewSet, basename="rule")
router.register("violations", views.ViolationViewSet, basename="violation")
router.register("cases", views.CaseViewSet, basename="case")
router.register("actions", views.ActionViewSet, basename="action")
router.register("appeals", views.AppealViewSet, basename="appeal")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("statements", views.StatementViewSet, basename="statement")

PUBLIC_ID = r"(?P<public_id>[A-Za-z0-9_.-]{1,64})"

urlpatterns = [
    re_path(rf"^api/v1/accounts/{PUBLIC_ID}/$", views.AccountUpsertView.as_view(), name="account"),
    re_path(rf"^api/v1/accounts/{PUBLIC_ID}/standing/$", views.AccountStandingView.as_view(), name="account-standing"),
    re_path(r"^api/v1/keys/(?P<prefix>[A-Za-z0-9_]{1,64})/$", views.KeyUpsertView.as_view(), name="key"),
    path("api/v1/metrics/summary/", metrics.MetricsSummaryView.as_view(), name="metrics-summary"),
    path("metrics", metrics.PrometheusView.as_view(), name="metrics"),
    path("api/v1/sources/", views.SourceListView.as_view(), name="sources"),
    path("api/v1/gate/check/", gate.GateCheckView.as_view(), name="gate-check"),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
