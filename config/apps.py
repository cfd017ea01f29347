"""The admin app, configured to use the console's own admin site (the team's day on the front page).

It lives here, not in ``enforcement.admin``: INSTALLED_APPS imports it before the app registry is
ready, and importing anything inside that package runs its ``__init__``, which imports models.
"""

from importlib import import_module

from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    default_site = "enforcement.admin.site.ConsoleAdminSite"

    def ready(self):
        # The site's class is in the package that registers the ModelAdmins. Asked for the site first,
        # Django would import that package while creating the site, and the registrations would go to a
        # second site created mid-import, then replaced by the first. So import the package first.
        import_module(self.default_site.rpartition(".")[0])
        super().ready()
