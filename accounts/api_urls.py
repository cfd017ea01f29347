from django.urls import path

from accounts.api_views import GateCheckView

urlpatterns = [
    path("api/v1/gate/check/", GateCheckView.as_view(), name="gate-check"),
]
