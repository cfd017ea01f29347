"""The trust-and-safety console in the Django admin, one module per concern.

Workflow rows (cases, violations, actions, appeals, emails, audit events) are never added, changed
or deleted here, not even by a superuser: every button posts to a view, next to its model's admin,
that calls a service. Rules (lead-editable policy data) and service tokens (created and revoked
through ``enforcement.tokens``) are the only things edited here. Accounts and keys are shown
read-only, with their standing.

Django's admin autodiscovery imports this package: importing the modules below registers their
ModelAdmins on the console's site (``site.ConsoleAdminSite``).
"""

from enforcement.admin import (  # noqa: F401  (imported to register their ModelAdmins)
    accounts,
    actions,
    appeals,
    audit,
    cases,
    outbox,
    rules,
    sources,
    tokens,
    violations,
)
