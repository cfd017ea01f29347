"""The admin app, configured to use the console's own admin site (the team's day on the front page)."""

from importlib import import_module

from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    default_site = "enforcement.admin.site.ConsoleAdminSite"

    def ready(self):
        # The site's module is inside the package that registers the ModelAdmins, so importing it runs
        # those registrations, and the first of them creates the site. Were the site created first (by
        # autodiscovery asking for it), importing its module would create a second one mid-way, the
        # registrations would land on that one, and the first would replace it. So import it first.
        import_module(self.default_site.rpartition(".")[0])
        super().ready()
