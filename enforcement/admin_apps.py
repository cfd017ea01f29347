"""The admin app, configured to use the console's own admin site (the team's day on the front page)."""

from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    default_site = "enforcement.admin_site.ConsoleAdminSite"
