from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config import health
from enforcement.admin import passkeys

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path(passkeys.MOUNT, include(passkeys)),  # the passkey ceremonies the second-factor pages' script calls
    path("admin/", admin.site.urls),
    path("", include("enforcement.api.urls")),
    path("", include("enforcement.integrations.urls")),
]

# JSON errors under /api/ (Django's own pages elsewhere); a body over the limit is a 413 everywhere.
handler400 = "enforcement.api.exceptions.handler400"
handler404 = "enforcement.api.exceptions.handler404"
handler500 = "enforcement.api.exceptions.handler500"
