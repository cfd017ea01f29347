from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("enforcement.api.urls")),
    path("", include("accounts.api_urls")),
    path("", include("enforcement.integrations.urls")),
]
