from django.urls import path

from enforcement.integrations.views import GitHubSecretScanningView

urlpatterns = [
    path(
        "api/v1/integrations/github/secret-scanning/",
        GitHubSecretScanningView.as_view(),
        name="github-secret-scanning",
    ),
]
