from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
]

# Each part of the public API owns its own URL module; missing ones are simply absent.
for module in ("enforcement.api.urls", "accounts.api_urls", "enforcement.integrations.urls"):
    try:
        urlpatterns.append(path("", include(module)))
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
