from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("enforcement.api.urls")),
    path("", include("accounts.api_urls")),
    path("", include("enforcement.integrations.urls")),
]

# JSON errors under /api/ (Django's own pages elsewhere).
handler404 = "enforcement.api.exceptions.handler404"
handler500 = "enforcement.api.exceptions.handler500"
